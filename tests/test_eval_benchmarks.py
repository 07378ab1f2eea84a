"""``kanpose eval lsp|mpii|crowdpose|ochuman`` on the shared samples with the shipped default model: each metric
written to metrics.json equals an independent computation on the same saved predictions (numpy / scipy /
pycocotools / xtcocotools in the test, not kanpose's metric code)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA, xtcocotools, xtcocotools_crowdpose_eval
from kanpose_cli.cli.app import app
from kanpose_cli.core.evaluation import benchmarks
from kanpose_cli.core.keypoints import COCO17
from kanpose_cli.core.results import PoseResult

runner = CliRunner()
LSPET = SHARED_DATA / "lspet"
SETS = SHARED_DATA / "keypoint-sets"
MPII_ANN, MPII_IMAGES = SETS / "mpii" / "test_mpii.json", SETS / "mpii"
CROWD_ANN, CROWD_IMAGES = SETS / "crowdpose" / "test_crowdpose.json", SETS / "crowdpose"
OCH_ANN, OCH_IMAGES = SETS / "ochuman" / "test_ochuman.json", SETS / "ochuman"
CROWDPOSE_SIGMAS = [0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079]

# The test's own joint tables (model COCO-17 index for each benchmark joint; None: COCO has no such joint).
# LSP order: r_ankle r_knee r_hip l_hip l_knee l_ankle r_wrist r_elbow r_shoulder l_shoulder l_elbow l_wrist neck head
COCO_FOR_LSP = [16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9, None, None]
# MPII order: r_ankle r_knee r_hip l_hip l_knee l_ankle pelvis thorax upper_neck head_top r_wrist r_elbow r_shoulder
#             l_shoulder l_elbow l_wrist
COCO_FOR_MPII = [16, 14, 12, 11, 13, 15, None, None, None, None, 10, 8, 6, 5, 7, 9]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def need(*paths: Path):
    for p in paths:
        if not p.exists():
            pytest.skip(f"shared sample not found: {p} (set KANPOSE_SHARED_DATA)")


def one_line_error(result) -> str:
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output, result.output
    return lines[0]


def run_dir(save_dir: Path) -> Path:
    runs = sorted(save_dir.iterdir())
    assert len(runs) == 1, runs
    return runs[0]


# ------------------------------------------------------------------------------------------------ LSP
@pytest.fixture(scope="module")
def lsp_run(tmp_path_factory) -> Path:
    need(LSPET / "joints.mat")
    save = tmp_path_factory.mktemp("lsp")
    result = invoke("eval", "lsp", "--data", LSPET, "--range", "1-20", "--device", "cpu", "--save-dir", save)
    assert result.exit_code == 0, result.output
    return run_dir(save)


def test_lsp_pck_equals_an_independent_computation(lsp_run):
    from scipy.io import loadmat

    metrics = json.loads((lsp_run / "metrics.json").read_text())
    preds = json.loads((lsp_run / "predictions.json").read_text())
    assert preds["keypoint_set"] == "coco17" and [p["number"] for p in preds["persons"]] == list(range(1, 21))
    joints = loadmat(str(LSPET / "joints.mat"))["joints"]  # LSP-Extended: 14 x 3 x N, flag 1 = visible
    correct, counted = np.zeros(14), np.zeros(14)
    for person in preds["persons"]:
        gt = joints[:, :, person["number"] - 1]
        vis = gt[:, 2] > 0
        if not (vis[9] and vis[2]):  # no torso: left shoulder (9) or right hip (2) not labelled
            continue
        torso = np.hypot(*(gt[9, :2] - gt[2, :2]))
        kp = np.asarray(person["keypoints"])
        for j, c in enumerate(COCO_FOR_LSP):
            if c is None or not vis[j]:
                continue
            counted[j] += 1
            correct[j] += np.hypot(*(kp[c, :2] - gt[j, :2])) < 0.2 * torso
    per_joint = np.where(counted > 0, correct / np.maximum(counted, 1), np.nan)
    expected = np.nanmean(per_joint)
    assert abs(metrics["PCK@0.2"] - expected) < 1e-9
    names = list(metrics["per_joint"])
    for j, name in enumerate(names):
        if np.isnan(per_joint[j]):
            assert metrics["per_joint"][name] is None, name
        else:
            assert abs(metrics["per_joint"][name] - per_joint[j]) < 1e-9, name
    assert metrics["not_scored_joints"] == ["neck", "head_top"]
    assert 0.3 < metrics["PCK@0.2"] < 1.0  # the shipped model was trained on COCO + LSP-Extended
    assert metrics["num_persons"] == 20 and metrics["settings"]["mapping"] == "coco17 -> lsp14"


def test_lsp_split_and_range_errors(tmp_path):
    need(LSPET / "joints.mat")
    result = invoke("eval", "lsp", "--data", LSPET, "--split", "test", "--device", "cpu", "--save-dir", tmp_path)
    assert result.exit_code == 2
    assert "4000 images, not the original LSP's 2000" in one_line_error(result)
    result = invoke("eval", "lsp", "--data", LSPET, "--range", "3990-4010", "--save-dir", tmp_path)
    assert result.exit_code == 2 and "holds 4000 images" in one_line_error(result)
    result = invoke("eval", "lsp", "--data", LSPET, "--range", "5", "--save-dir", tmp_path)
    assert result.exit_code == 2 and "expected A-B" in one_line_error(result)
    assert benchmarks.lsp_selection(2000) == (1001, 2000)  # the original LSP's test split
    assert benchmarks.lsp_selection(2000, "train") == (1, 1000)
    assert benchmarks.lsp_selection(10000, image_range="9001-10000") == (9001, 10000)


class FakeEstimator:
    """Two detections on the first image (the second nearer the annotated joints), none on the second."""

    keypoints = COCO17
    box_source = None

    def predict(self, images, paths, boxes=None):
        assert boxes is None
        far = np.tile([[5.0, 5.0]], (17, 1))
        near = np.tile([[100.0, 100.0]], (17, 1))
        first = PoseResult(np.array([[0, 0, 10, 10], [90, 90, 110, 110]]), np.ones(2), np.stack([far, near]),
                           np.ones((2, 17)), (200, 200), keypoint_set=COCO17)
        empty = PoseResult(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 2)), np.zeros((0, 17)), (200, 200),
                           keypoint_set=COCO17)
        return [first, empty][:len(images)]


def test_detector_boxes_score_the_nearest_person_and_count_misses(tmp_path, monkeypatch):
    import cv2

    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((200, 200, 3), np.uint8))
    joints = np.tile([[100.0, 100.0]], (14, 1))
    persons = [benchmarks.Person(i + 1, tmp_path / n, joints.copy(), np.ones(14, bool), 50.0)
               for i, n in enumerate(("a.jpg", "b.jpg"))]
    run = benchmarks.predict_single_person(FakeEstimator(), persons, boxes="detector")
    assert run.missed == 1 and run.keypoints[1] is None
    np.testing.assert_allclose(run.keypoints[0][:, :2], 100.0)  # the nearer detection
    np.testing.assert_allclose(run.boxes[0], [90, 90, 110, 110])
    # scored: person 1's 12 mapped joints are exact (correct), person 2's are all missed -> 0.5 per joint
    from kanpose_cli.core.evaluation import keypoint_metrics as km
    from kanpose_cli.core.evaluation.benchmark_sets import scoring_mapping
    from kanpose_cli.core.keypoints import LSP14

    pred, has = benchmarks.benchmark_predictions(run, scoring_mapping(COCO17, LSP14), COCO17, LSP14)
    scores = km.pck(pred, np.stack([joints, joints]), np.ones((2, 14), bool) & has, np.array([50.0, 50.0]), 0.2)
    assert scores.counts.tolist() == [2] * 12 + [0, 0] and scores.mean == 0.5


# ------------------------------------------------------------------------------------------------ MPII
def test_mpii_pckh_equals_an_independent_computation(tmp_path):
    need(MPII_ANN)
    result = invoke("eval", "mpii", "--ann", MPII_ANN, "--images", MPII_IMAGES, "--device", "cpu", "--save-dir",
                    tmp_path)
    assert result.exit_code == 0, result.output
    out = run_dir(tmp_path)
    metrics = json.loads((out / "metrics.json").read_text())
    preds = json.loads((out / "predictions.json").read_text())["persons"]
    entries = json.loads(MPII_ANN.read_text())
    hits = {0.5: 0, 0.1: 0}
    total = 0
    for entry, person in zip(entries, preds):
        gt = np.asarray(entry["joints"])  # 1-based MATLAB pixels
        vis = np.asarray(entry["joints_vis"]) > 0
        head = np.hypot(*(gt[9] - gt[8]))  # no headbox in mmpose's JSON: head top - upper neck
        kp = np.asarray(person["keypoints"])[:, :2] + 1.0  # predictions are 0-based
        for j, c in enumerate(COCO_FOR_MPII):
            if c is None or not vis[j]:
                continue
            total += 1
            d = np.hypot(*(kp[c] - gt[j]))
            for thr in hits:
                hits[thr] += d < thr * head
    assert abs(metrics["PCKh@0.5"] - hits[0.5] / total) < 1e-9
    assert abs(metrics["PCKh@0.1"] - hits[0.1] / total) < 1e-9
    assert metrics["not_scored_joints"] == ["pelvis", "thorax", "upper_neck", "head_top"]
    assert metrics["groups"]["Head"] is None and 0.5 < metrics["PCKh@0.5"] <= 1.0


def test_mpii_headbox_and_malformed_entries(tmp_path):
    entry = {"image": "x.jpg", "center": [101.0, 101.0], "scale": 1.0, "joints": [[10.0, 10.0]] * 16,
             "joints_vis": [1] * 16, "headbox": [[0, 0], [30, 40]]}
    (tmp_path / "ann.json").write_text(json.dumps([entry]))
    person = benchmarks.mpii_people(tmp_path / "ann.json", tmp_path)[0]
    assert person.norm == pytest.approx(0.6 * 50)  # official: 0.6 x head-box diagonal
    # mmpose's box: centre - 1 = (100, 100), moved down 15 px (scale 1), side 200
    np.testing.assert_allclose(person.box, [0.0, 15.0, 200.0, 215.0])
    np.testing.assert_allclose(person.joints[0], [9.0, 9.0])  # 1-based -> 0-based
    bad = [entry, {k: v for k, v in entry.items() if k != "joints"}]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    result = invoke("eval", "mpii", "--ann", tmp_path / "bad.json", "--images", tmp_path, "--save-dir", tmp_path / "r")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "bad.json: entry 1" in line and "joints" in line
    bad = [{**entry, "joints": [[1.0, 2.0]] * 15}]
    (tmp_path / "short.json").write_text(json.dumps(bad))
    result = invoke("eval", "mpii", "--ann", tmp_path / "short.json", "--images", tmp_path, "--save-dir", tmp_path)
    assert result.exit_code == 1 and "short.json: entry 0: joints must be 16" in one_line_error(result)


# ------------------------------------------------------------------------------------------------ CrowdPose
def _xtcocotools_stats(ann_file: Path, res_file: Path, sigmas) -> list[float]:
    ev = xtcocotools_crowdpose_eval(ann_file, res_file, sigmas)
    return [float(s) for s in ev.stats]  # AP AP50 AP75 AR AR50 AR75, AP easy/medium/hard (rounded to 4 places)


def _check_against(metrics: dict, stats: list[float]) -> None:
    for name, ref in zip(("AP", "AP50", "AP75", "AR", "AR50", "AR75"), stats[:6]):
        assert abs(metrics[name] - ref) < 1e-9, name
    for name, ref in zip(("AP_easy", "AP_medium", "AP_hard"), stats[6:]):
        assert round(metrics[name], 4) == pytest.approx(ref), name


@pytest.mark.parametrize("perturb", [False, True], ids=["gt", "perturbed"])
def test_crowdpose_results_give_xtcocotools_numbers(tmp_path, perturb):
    need(CROWD_ANN)
    xtcocotools()
    rng = np.random.default_rng(0)
    results = []
    for a in json.loads(CROWD_ANN.read_text())["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        kp[:, 2] = 1.0
        if perturb:
            kp[:, :2] += rng.normal(0.0, 6.0, (14, 2))
        results.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(),
                        "score": float(rng.uniform(0.2, 1.0)) if perturb else 1.0})
    (tmp_path / "res.json").write_text(json.dumps(results))
    result = invoke("eval", "crowdpose", "--ann", CROWD_ANN, "--results", tmp_path / "res.json", "--save-dir",
                    tmp_path / "runs")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run_dir(tmp_path / "runs") / "metrics.json").read_text())
    _check_against(metrics, _xtcocotools_stats(CROWD_ANN, tmp_path / "res.json", CROWDPOSE_SIGMAS))
    assert (metrics["AP"] < 0.9) == perturb


def test_crowdpose_model_run_is_scored_on_the_limb_joints(tmp_path):
    """The default (COCO-17) model on the sample: results.json holds the 12 limb joints; the AP equals xtcocotools'
    (or, without it, pycocotools' with CrowdPose's 0.53·w·h area) on a 12-joint annotation file the test cuts."""
    need(CROWD_ANN)
    result = invoke("eval", "crowdpose", "--ann", CROWD_ANN, "--images", CROWD_IMAGES, "--device", "cpu",
                    "--save-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    out = run_dir(tmp_path / "runs")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["not_scored_keypoints"] == ["head", "neck"] and len(metrics["scored_keypoints"]) == 12
    results = json.loads((out / "results.json").read_text())
    assert results and all(len(r["keypoints"]) == 36 for r in results)
    cut = json.loads(CROWD_ANN.read_text())
    for a in cut["annotations"]:
        a["keypoints"] = a["keypoints"][:36]
        a["num_keypoints"] = sum(1 for v in a["keypoints"][2::3] if v == 2)
    cut["categories"][0]["keypoints"] = cut["categories"][0]["keypoints"][:12]
    (tmp_path / "cut.json").write_text(json.dumps(cut))
    try:
        stats = _xtcocotools_stats(tmp_path / "cut.json", out / "results.json", CROWDPOSE_SIGMAS[:12])
    except pytest.skip.Exception:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        for a in cut["annotations"]:
            a["area"] = 0.53 * a["bbox"][2] * a["bbox"][3]
        (tmp_path / "cut.json").write_text(json.dumps(cut))
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(tmp_path / "cut.json"))
            ev = COCOeval(gt, gt.loadRes(str(out / "results.json")), "keypoints")
            ev.params.kpt_oks_sigmas = np.asarray(CROWDPOSE_SIGMAS[:12])
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        s = ev.stats
        stats = [s[0], s[1], s[2], s[5], s[6], s[7], -1.0, round(float(s[0]), 4), -1.0]  # both images are medium
    _check_against(metrics, stats)
    assert 0.2 < metrics["AP"] <= 1.0


def test_crowdpose_without_crowd_index_fails_naming_the_entry(tmp_path):
    need(CROWD_ANN)
    data = json.loads(CROWD_ANN.read_text())
    del data["images"][0]["crowdIndex"]
    (tmp_path / "c.json").write_text(json.dumps(data))
    result = invoke("eval", "crowdpose", "--ann", tmp_path / "c.json", "--images", CROWD_IMAGES, "--save-dir",
                    tmp_path)
    assert result.exit_code == 1
    assert "c.json: images entry 0" in one_line_error(result)


# ------------------------------------------------------------------------------------------------ OCHuman
def test_ochuman_ap_equals_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    need(OCH_ANN)
    result = invoke("eval", "ochuman", "--ann", OCH_ANN, "--images", OCH_IMAGES, "--device", "cpu", "--save-dir",
                    tmp_path)
    assert result.exit_code == 0, result.output
    out = run_dir(tmp_path)
    metrics = json.loads((out / "metrics.json").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(OCH_ANN))
        ev = COCOeval(gt, gt.loadRes(str(out / "results.json")), "keypoints")  # pycocotools' own COCO sigmas
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert metrics["benchmark"] == "ochuman"
    assert abs(metrics["AP"] - ev.stats[0]) < 1e-9 and abs(metrics["AR"] - ev.stats[5]) < 1e-9
    assert 0.1 < metrics["AP"] <= 1.0
