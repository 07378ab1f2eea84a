"""Bootstrap of COCO keypoint AP over images (``coco_metric.bootstrap_ap`` / ``resampled_ap``, ``eval --bootstrap``):
a resample's AP must equal a full pycocotools evaluation of the same images duplicated under new ids."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from kanpose_cli.core.data.coco import quiet_coco
from kanpose_cli.core.evaluation.coco_metric import bootstrap_ap, coco_eval, resampled_ap


def _noisy_results(coco_gt, seed: int = 0) -> list[dict]:
    """Ground-truth people fed back with pixel noise that grows with the image id (so images differ in AP), and
    a random score: a results list that scores well below 1."""
    rng = np.random.default_rng(seed)
    dets = []
    for ann in coco_gt.dataset["annotations"]:
        if ann.get("iscrowd") or not ann.get("num_keypoints"):
            continue
        kp = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
        scale = 2.0 + (ann["image_id"] % 7) * 3.0
        kp[:, :2] += rng.normal(0, scale, size=(len(kp), 2))
        kp[:, 2] = 1.0
        dets.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kp.ravel().round(2).tolist(),
                     "score": float(rng.uniform(0.3, 1.0))})
    return dets


def _duplicated_ap(coco_gt, dets: list[dict], image_ids: list[int], pick: np.ndarray) -> float:
    """AP of a plain pycocotools evaluation over the picked images, each copy under a new image id."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = {"images": [], "annotations": [], "categories": copy.deepcopy(coco_gt.dataset["categories"])}
    new_dets, next_ann = [], 1
    for n, pos in enumerate(pick):
        old = image_ids[int(pos)]
        new_id = 10_000_000 + n
        gt["images"].append({**coco_gt.imgs[old], "id": new_id})
        for ann in coco_gt.imgToAnns.get(old, []):
            gt["annotations"].append({**copy.deepcopy(ann), "image_id": new_id, "id": next_ann})
            next_ann += 1
        new_dets += [{**d, "image_id": new_id} for d in dets if d["image_id"] == old]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(new_dets), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_a_resample_equals_a_full_evaluation_of_the_duplicated_images(coco_mini):
    coco_gt = quiet_coco(coco_mini / "annotations" / "person_keypoints_val2017.json")
    dets = _noisy_results(coco_gt)
    ids = sorted(coco_gt.getImgIds())
    ev, _ = coco_eval(coco_gt, dets, ids)
    with_people = [i for i, img in enumerate(ids) if coco_gt.imgToAnns.get(img)]
    rng = np.random.default_rng(3)
    for pick in (np.arange(len(ids)),  # no resampling: the plain AP
                 rng.choice(with_people, size=len(ids)),  # repeats of annotated images
                 rng.integers(0, len(ids), size=len(ids))):
        expected = _duplicated_ap(coco_gt, dets, ids, pick)
        assert 0.05 < expected < 0.95
        assert resampled_ap(ev, pick) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_figures_are_reproducible_and_bracket_the_ap(coco_mini):
    coco_gt = quiet_coco(coco_mini / "annotations" / "person_keypoints_val2017.json")
    ev, _ = coco_eval(coco_gt, _noisy_results(coco_gt), sorted(coco_gt.getImgIds()))
    a, b = bootstrap_ap(ev, resamples=30, seed=1), bootstrap_ap(ev, resamples=30, seed=1)
    assert a == b and a["images"] == 79 and a["resamples"] == 30
    low, high = a["ci95"]
    assert low < a["AP"] < high and a["std"] > 0.005  # 39 images with people: AP varies by more than rounding
    assert bootstrap_ap(ev, resamples=30, seed=2)["std"] != a["std"]
    with pytest.raises(ValueError):
        bootstrap_ap(ev, resamples=1)


def test_eval_bootstrap_option_writes_the_interval(coco_mini, tmp_path):
    from typer.testing import CliRunner

    from kanpose_cli.cli.app import app

    coco_gt = quiet_coco(coco_mini / "annotations" / "person_keypoints_val2017.json")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_noisy_results(coco_gt)))
    out = CliRunner().invoke(app, ["eval", "coco", "--data", str(coco_mini), "--results", str(results),
                                   "--bootstrap", "20", "--save-dir", str(tmp_path / "runs")])
    assert out.exit_code == 0, out.output
    metrics = json.loads((tmp_path / "runs" / "exp1" / "metrics.json").read_text())
    boot = metrics["bootstrap"]
    assert boot["AP"] == pytest.approx(metrics["AP"], abs=1e-12) and boot["resamples"] == 20
    assert f"95 % interval {boot['ci95'][0]:.3f}–{boot['ci95'][1]:.3f}" in " ".join(out.output.split())
