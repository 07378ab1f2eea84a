"""CrowdPose AP / AP easy / medium / hard (core/evaluation/crowdpose_metric.py) against the reference implementation,
xtcocotools' ``COCOeval(..., 'keypoints_crowd', sigmas, use_area=False)``, on the shared CrowdPose sample."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from conftest import SHARED_DATA, xtcocotools_crowdpose_eval
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.evaluation.benchmark_sets import CROWDPOSE14
from kanpose_cli.core.evaluation.crowdpose_metric import CROWD_INDEX_SPLITS, crowd_levels, score_crowdpose

SAMPLE = SHARED_DATA / "keypoint-sets" / "crowdpose"
ANN = SAMPLE / "test_crowdpose.json"
STATS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75")

needs_sample = pytest.mark.skipif(not ANN.is_file(), reason=f"CrowdPose sample not found: {ANN}")


def _reference(ann_file, res_file, sigmas) -> dict:
    """xtcocotools' CrowdPose numbers, and its per-level AP before its rounding to 4 decimals (the same
    evaluate/accumulate/mean that its ``get_type_result`` runs)."""
    ev = xtcocotools_crowdpose_eval(ann_file, res_file, sigmas)
    with contextlib.redirect_stdout(io.StringIO()):
        stats = [float(s) for s in ev.stats]
        easy, medium, hard = ev.split(ev.anno_file[0], *CROWD_INDEX_SPLITS)
        levels = []
        for ids in (easy, medium, hard):
            ev.params.imgIds = ids
            ev.evaluate()
            ev.accumulate()
            levels.append(float(np.mean(ev.eval["precision"][:, :, :, 0, :])))
    return {**dict(zip(STATS, stats[:6])), "rounded_levels": stats[6:9],
            "AP_easy": levels[0], "AP_medium": levels[1], "AP_hard": levels[2]}


def _gt_results(dataset: dict) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
             "keypoints": [float(v) if i % 3 < 2 else 1.0 for i, v in enumerate(a["keypoints"])]}
            for a in dataset["annotations"]]


def _perturbed(results: list[dict], seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for r in results:
        kp = np.asarray(r["keypoints"], float).reshape(-1, 3)
        kp[:, :2] += rng.normal(0.0, 8.0, (len(kp), 2))
        out.append({**r, "keypoints": [float(v) for v in kp.ravel()], "score": float(rng.uniform(0.3, 1.0))})
    return out


def _compare(tmp_path, dataset: dict, results: list[dict], joints=None, sigmas=CROWDPOSE14.sigmas):
    ann_file, res_file = tmp_path / "ann.json", tmp_path / "res.json"
    ann_file.write_text(json.dumps(dataset))
    res_file.write_text(json.dumps(results))
    ref = _reference(ann_file, res_file, sigmas)
    ours = score_crowdpose(ann_file, res_file, joints=joints)
    for name in (*STATS, "AP_easy", "AP_medium", "AP_hard"):
        assert ours[name] == pytest.approx(ref[name], abs=1e-9), name
    assert [round(ours[f"AP_{lv}"], 4) for lv in ("easy", "medium", "hard")] == pytest.approx(ref["rounded_levels"])
    return ours


@needs_sample
def test_gt_and_perturbed_results_give_xtcocotools_numbers(tmp_path):
    dataset = json.loads(ANN.read_text())
    gt = _gt_results(dataset)
    ours = _compare(tmp_path, dataset, gt)
    # one of the 5 persons has num_keypoints 0 (ignored): its result is a false positive, hence AP < 1
    assert 0.9 < ours["AP"] < 1.0 and ours["AR"] == 1.0
    assert ours["images_per_level"] == {"easy": 0, "medium": 2, "hard": 0}  # crowd index 0.33 and 0.39
    ours = _compare(tmp_path, dataset, _perturbed(gt))
    assert 0.3 < ours["AP"] < 0.9


@needs_sample
def test_crowd_levels_split_as_the_official_code(tmp_path):
    """Crowd index 0.15 is easy in the official code (split at 0.2), medium in the paper's text (0.1): the reference
    decides. 0.85 is hard."""
    dataset = json.loads(ANN.read_text())
    dataset["images"][0]["crowdIndex"], dataset["images"][1]["crowdIndex"] = 0.15, 0.85
    ours = _compare(tmp_path, dataset, _perturbed(_gt_results(dataset), seed=1))
    assert ours["images_per_level"] == {"easy": 1, "medium": 0, "hard": 1}
    assert ours["AP_medium"] == -1.0 and ours["AP_easy"] > 0 and ours["AP_hard"] > 0
    assert crowd_levels(dataset) == {dataset["images"][0]["id"]: "easy", dataset["images"][1]["id"]: "hard"}


@needs_sample
def test_limb_joints_only_matches_xtcocotools_on_the_cut_file(tmp_path):
    """12 limb joints (what a COCO-17 model has): the same as xtcocotools on a file the test cuts itself."""
    dataset = json.loads(ANN.read_text())
    results = _perturbed(_gt_results(dataset), seed=2)
    cut = copy.deepcopy(dataset)
    for a in cut["annotations"]:
        a["keypoints"] = a["keypoints"][:36]
        a["num_keypoints"] = sum(1 for v in a["keypoints"][2::3] if v == 2)
    cut["categories"][0]["keypoints"] = cut["categories"][0]["keypoints"][:12]
    cut_results = [{**r, "keypoints": r["keypoints"][:36]} for r in results]
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    (ref_dir / "ann.json").write_text(json.dumps(cut))
    (ref_dir / "res.json").write_text(json.dumps(cut_results))
    ref = _reference(ref_dir / "ann.json", ref_dir / "res.json", CROWDPOSE14.sigmas[:12])
    ours = score_crowdpose(ANN, cut_results, joints=range(12))
    for name in (*STATS, "AP_medium"):
        assert ours[name] == pytest.approx(ref[name], abs=1e-9), name
    assert ours["scored_keypoints"] == list(CROWDPOSE14.names[:12])


@needs_sample
def test_malformed_files_name_the_entry(tmp_path):
    dataset = json.loads(ANN.read_text())
    del dataset["images"][1]["crowdIndex"]
    (tmp_path / "a.json").write_text(json.dumps(dataset))
    with pytest.raises(InputError, match=r"a\.json: images entry 1 .*crowdIndex"):
        score_crowdpose(tmp_path / "a.json", [])
    dataset = json.loads(ANN.read_text())
    dataset["annotations"][2]["keypoints"] = dataset["annotations"][2]["keypoints"][:-3]
    (tmp_path / "b.json").write_text(json.dumps(dataset))
    with pytest.raises(InputError, match=r"b\.json: annotations entry 2 .*13 keypoints"):
        score_crowdpose(tmp_path / "b.json", [])
    with pytest.raises(InputError, match="keypoints per instance"):
        score_crowdpose(ANN, [{**r, "keypoints": r["keypoints"][:36]} for r in _gt_results(json.loads(
            ANN.read_text()))])
