"""Shared fixtures. Real data lives in ``../shared/data`` (never committed); tests needing it skip cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KANPOSE_SHARED_DATA", REPO.parent / "shared" / "data"))
COCO_MINI = SHARED_DATA / "coco-mini"


# Tests that take more than about 4 s on 2 CPU cores, or share a fixture that does (subprocesses, DDP,
# kill-and-resume, the YOLO peer, benchmarks, the big ViTs), from `python -m pytest --durations=70` on 2026-12-07
# (AMD EPYC, 2 cores, shared with other work).
# They get the `slow` marker here, in one place, besides the `@pytest.mark.slow` decorators in the test files:
# `python -m pytest -q` (the README's command) deselects them, `python -m pytest -q -m slow` runs them, CI runs both.
SLOW_TESTS = frozenset({
    "tests/test_amfacpose.py::test_output_shapes_and_backward[amfacpose-r18-bins1]",
    "tests/test_amfacpose.py::test_output_shapes_and_backward[amfacpose-r34-bins0]",
    "tests/test_amfacpose.py::test_params_and_gmacs_within_5_percent_of_paper[amfacpose-r34-3.8-5.2]",
    "tests/test_amfacpose.py::test_table6_ablation_switches_remove_their_module[se]",
    "tests/test_analysis.py::test_cli_analyze_writes_json_tables_and_plots",
    "tests/test_api.py::test_api_and_cli_give_identical_keypoints_on_real_photos",
    "tests/test_api.py::test_package_exports_are_lazy",
    "tests/test_backend.py::test_auto_is_onnxruntime_on_cpu_and_matches_torch_on_real_images",
    "tests/test_backend.py::test_auto_rules_and_errors",
    "tests/test_backend.py::test_cli_backend_onnxruntime_with_random_weights_and_a_bad_backend",
    "tests/test_backend.py::test_first_onnx_export_is_announced_once",
    "tests/test_backend.py::test_onnxruntime_micro_batches_large_crops_like_torch",
    "tests/test_backend.py::test_the_detector_follows_the_backend_on_cpu",
    "tests/test_bench.py::test_bench_onnxruntime_rows",
    "tests/test_bench.py::test_bench_quick_rows_json_csv",
    "tests/test_cli_output.py::test_broken_video_prints_only_kanposes_error_line",
    "tests/test_cli_output.py::test_models_csv_has_the_same_models_and_counts_as_json",
    "tests/test_cli_output.py::test_models_json_lists_every_matching_model_with_params_and_macs",
    "tests/test_cli_output.py::test_models_table_through_a_pipe_shows_every_cell_in_full[30]",
    "tests/test_cli_output.py::test_models_table_through_a_pipe_shows_every_cell_in_full[60]",
    "tests/test_cli_output.py::test_models_table_through_a_pipe_shows_every_cell_in_full[None]",
    "tests/test_cli_predict.py::test_every_registered_model_runs_in_predict_with_random_weights[vitpose-h]",
    "tests/test_cli_predict.py::test_every_registered_model_runs_in_predict_with_random_weights[vitpose-l]",
    "tests/test_detector.py::test_detector_writes_nothing_to_the_working_directory",
    "tests/test_detector.py::test_person_box_ap_on_coco_mini",
    "tests/test_distributed.py::test_finish_stops_the_gloo_threads_before_interpreter_shutdown",
    "tests/test_distributed.py::test_two_gloo_processes_write_the_same_files_as_one",
    "tests/test_eval.py::test_every_family_runs_through_eval[detector-kanfpn]",
    "tests/test_eval.py::test_peer_ap_matches_reference",
    "tests/test_eval.py::test_results_option_equals_pycocotools",  # shares the peer run (about 45 s) above
    "tests/test_export.py::test_onnx_export_parity_every_family[flatpose]",
    "tests/test_export.py::test_onnx_export_parity_every_family[kanfpn]",
    "tests/test_export.py::test_onnx_export_parity_every_family[vitpose]",
    "tests/test_init.py::test_train_kanfpn_s4_with_init_reports_and_runs",
    "tests/test_readme.py::test_readme_main_command_runs_verbatim_on_a_fresh_home",
    "tests/test_readme.py::test_readme_python_example_runs",
    "tests/test_stream_pipeline.py::test_det_every_3_runs_the_detector_on_frames_0_3_6_9_only",
    "tests/test_tracking.py::test_smooth_lowers_the_jitter_of_a_still_person",
    "tests/test_train.py::test_cli_resume_of_a_killed_subprocess",
    "tests/test_train.py::test_ddp_two_cpu_processes_gloo",
    "tests/test_train.py::test_kill_mid_epoch_and_resume_loses_nothing[0]",
    "tests/test_train.py::test_kill_mid_epoch_and_resume_loses_nothing[3]",
    "tests/test_ux.py::test_piped_output_keeps_a_long_path_on_one_line",
    "tests/test_vitpose.py::test_matches_transformers_vitpose[vitpose-b-768-12]",
    # a second pass (2026-12-07, after the first list): the fast tests still over about 4.3 s under load
    "tests/test_amfacpose.py::test_table6_ablation_switches_remove_their_module[afpn]",
    "tests/test_stream_pipeline.py::test_reading_ahead_keeps_order_and_reports_a_corrupt_image",
    "tests/test_amfacpose.py::test_table6_ablation_switches_remove_their_module[coordconv]",
    "tests/test_inference.py::test_prepared_amfacpose_gives_the_same_keypoints[amfacpose-r34-rkan]",
    "tests/test_amfacpose.py::test_scrm_switch_and_baseline_row",
    "tests/test_amfacpose.py::test_output_shapes_and_backward[amfacpose-r18-256x192-bins2]",
    "tests/test_inference.py::test_prepared_amfacpose_gives_the_same_keypoints[amfacpose-r34]",
    "tests/test_eval.py::test_flip_test_maps_keypoints_through_flip_index[kanfpn]",
    "tests/test_analysis.py::test_cli_compare_two_runs",
    "tests/test_tracking.py::test_cli_track_keeps_every_id_through_a_moving_clip_with_a_corrupt_frame",
    "tests/test_amfacpose.py::test_table6_ablation_switches_remove_their_module[dgcb]",
    "tests/test_tracking.py::test_api_stream_tracks_with_both_ultralytics_trackers[botsort]",
    "tests/test_eval.py::test_every_family_runs_through_eval[gt-kanfpn]",
    "tests/test_tracking.py::test_api_stream_tracks_with_both_ultralytics_trackers[bytetrack]",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """Path of ``../shared/data/coco-mini`` (real COCO 2017 images + official keypoint annotations)."""
    if not (COCO_MINI / "annotations" / "person_keypoints_val2017.json").is_file():
        pytest.skip(f"real COCO data not found at {COCO_MINI} (set KANPOSE_SHARED_DATA)")
    return COCO_MINI


@pytest.fixture(scope="session")
def unlabeled_images() -> Path:
    path = SHARED_DATA / "coco-unlabeled" / "val2017"
    if not path.is_dir():
        pytest.skip(f"unlabelled COCO images not found at {path}")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module: on a shared 2-core machine, 2 OpenMP threads under load stall at
    barriers (measured 25× slower). Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def perturb_batchnorm(module) -> None:
    """Give every BatchNorm2d in ``module`` non-trivial running statistics and affine parameters (in place, under
    the caller's RNG seed), so that comparisons against a reference implementation exercise them."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.1, 0.1)


def xtcocotools():
    """The CrowdPose reference implementation's ``(COCO, COCOeval)``; the test skips, saying why and how to install
    it, when it cannot be imported."""
    try:
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval
    except Exception as exc:  # noqa: BLE001 - ImportError, or a wheel built against another numpy (ValueError)
        pytest.skip(f"xtcocotools cannot be imported ({type(exc).__name__}: {exc}); install it with `pip install "
                    f"--no-binary xtcocotools --no-build-isolation xtcocotools` (CONTRIBUTING.md)")
    return COCO, COCOeval


def xtcocotools_crowdpose_eval(ann_file, res_file, sigmas):
    """xtcocotools' CrowdPose evaluation (``keypoints_crowd``, no area ranges) of a results file, evaluated,
    accumulated and summarised (its prints swallowed): the reference the CrowdPose tests compare with."""
    import contextlib
    import io

    import numpy as np

    COCO, COCOeval = xtcocotools()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        ev = COCOeval(gt, gt.loadRes(str(res_file)), "keypoints_crowd", np.asarray(sigmas), use_area=False)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev
