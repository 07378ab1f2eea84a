"""``kanpose eval``: COCO keypoint evaluation (protocol spec §1.5), on the real coco-mini data where needed."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.data.coco import CocoKeypointData
from kanpose_cli.core.evaluation import evaluator
from kanpose_cli.core.evaluation.oks_nms import oks_nms
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.keypoints import COCO17
from kanpose_cli.core.models import create_model, get_spec, list_models

ANN = "annotations/person_keypoints_val2017.json"
PEOPLE_IDS = "139,34417"  # two coco-mini val images with labelled people
METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def families() -> list[str]:
    """Registered families, read at collection time (families added later are covered automatically)."""
    return sorted({get_spec(n).family for n in list_models()})


# One small variant per family for the per-family tests below, named explicitly: picking "the fewest parameters"
# at run time depended on whether the installed timm can build on the meta device (timm < 1.0.9 cannot), and so
# changed with the installed versions. The flip test also needs variants whose random-weight outputs are peaked
# enough for argmax/DARK decoding to be stable (vitpose-s-simple and flatpose-b are not).
SMALL_VARIANTS = {"amfacpose": "amfacpose-r18-256x192", "flatpose": "flatpose-b-noica", "kanfpn": "kanfpn",
                  "vitpose": "vitpose-s"}


def small_variant(family: str) -> str:
    """The variant of ``family`` the per-family tests use (:data:`SMALL_VARIANTS`)."""
    assert family in SMALL_VARIANTS, f"new model family {family!r}: add its small variant to SMALL_VARIANTS"
    assert SMALL_VARIANTS[family] in list_models(family)
    return SMALL_VARIANTS[family]


def one_line_error(result) -> str:
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


# ------------------------------------------------------------------------------------------------ scoring
def test_gt_fed_back_scores_ap_1(coco_mini):
    data = CocoKeypointData(coco_mini / ANN)
    m = evaluator.score_results(coco_mini / ANN, data.gt_as_results())
    assert m["AP"] == pytest.approx(1.0) and m["AR"] == pytest.approx(1.0)
    assert all(isinstance(m[k], float) for k in METRICS)


def test_score_results_empty_and_foreign_ids(coco_mini):
    assert evaluator.score_results(coco_mini / ANN, [])["AP"] == 0.0
    with pytest.raises(InputError, match="not in the annotation file"):
        evaluator.score_results(coco_mini / ANN, [{"image_id": 1, "category_id": 1, "keypoints": [0, 0, 1] * 17,
                                                    "score": 1.0}])


def test_gt_boxes_follow_vitpose_convention(coco_mini):
    data = CocoKeypointData(coco_mini / ANN)
    coco = data.coco
    expected = sum(1 for a in coco.dataset["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0)
    boxes = [data.gt_boxes(i) for i in data.image_ids]
    assert sum(len(b) for b, _ in boxes) == expected
    for (b, s), i in zip(boxes, data.image_ids):
        assert (s == 1).all()
        if len(b):
            w, h = coco.imgs[i]["width"], coco.imgs[i]["height"]
            assert (b[:, 0] >= 0).all() and (b[:, 2] <= w - 1).all() and (b[:, 3] <= h - 1).all()
            assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()


def test_oks_nms_drops_duplicates_keeps_others():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(100, 200, (17, 2)), np.ones((17, 1))], 1)
    near = a.copy()
    near[:, :2] += 0.5
    far = a.copy()
    far[:, 0] += 300
    keep = oks_nms(np.stack([near, a, far]), np.array([0.8, 0.9, 0.7]), np.full(3, 100.0 * 150.0), thr=0.9,
                   sigmas=COCO17.sigmas_array())
    assert keep == [1, 2]


# ------------------------------------------------------------------------------------------- the YOLO peer
@pytest.fixture(scope="module")
def peer_run(coco_mini, tmp_path_factory) -> Path:
    """``kanpose eval coco --model yolo:yolo11n-pose.pt`` on all coco-mini val images (~45 s on 2 CPU cores)."""
    out = tmp_path_factory.mktemp("peer")
    result = invoke("eval", "coco", "--data", coco_mini, "--model", "yolo:yolo11n-pose.pt", "--save-dir", out)
    assert result.exit_code == 0, result.output
    return out / "exp1"


def test_peer_ap_matches_reference(peer_run):
    metrics = json.loads((peer_run / "metrics.json").read_text())
    assert metrics["AP"] == pytest.approx(0.48, abs=0.02)
    assert metrics["settings"]["model"] == "yolo:yolo11n-pose.pt"
    assert metrics["settings"]["boxes"].startswith("own")
    assert metrics["num_images"] == 79 and metrics["num_skipped"] == 0


def test_results_option_equals_pycocotools(peer_run, coco_mini, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = peer_run / "results.json"
    out = invoke("eval", "coco", "--data", coco_mini, "--results", results, "--save-dir", tmp_path)
    assert out.exit_code == 0, out.output
    assert "Average Precision" not in out.output  # pycocotools' prints stay out of the CLI output
    ours = json.loads((tmp_path / "exp1" / "metrics.json").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_mini / ANN))
        ev = COCOeval(gt, gt.loadRes(str(results)), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    for name, value in zip(METRICS, ev.stats):
        assert ours[name] == pytest.approx(float(value), abs=1e-9)


# ------------------------------------------------------------------------------------------ every family
@pytest.mark.parametrize("family", families())
@pytest.mark.parametrize("boxes", ["gt", "detector"])
def test_every_family_runs_through_eval(family, boxes, coco_mini, tmp_path):
    name = small_variant(family)
    result = invoke("eval", "coco", "--data", coco_mini, "--model", name, "--weights", "random", "--boxes", boxes,
                    "--det-conf", "0.3", "--image-ids", PEOPLE_IDS, "--batch", "8", "--save-dir", tmp_path)
    assert result.exit_code == 0, result.output
    run = tmp_path / "exp1"
    metrics = json.loads((run / "metrics.json").read_text())
    assert all(0.0 <= metrics[k] <= 1.0 or metrics[k] == -1.0 for k in METRICS)
    s = metrics["settings"]
    assert s["model"] == name and s["flip"] is True and s["image_ids"] == [139, 34417]
    assert s["boxes"].startswith("gt" if boxes == "gt" else "detector")
    res = json.loads((run / "results.json").read_text())
    assert res and all(len(r["keypoints"]) == 51 and r["image_id"] in (139, 34417) for r in res)
    assert "AP" in result.output and "boxes" in result.output


def test_evaluate_model_public_api(coco_mini, tmp_path):
    model = create_model(small_variant("amfacpose"))
    calls = []
    rep = evaluator.evaluate_model(model, coco_mini / ANN, coco_mini / "val2017", boxes="gt", flip=False,
                                   batch_size=4, image_ids=[139, 34417], results_file=tmp_path / "r.json",
                                   progress=lambda d, t, m: calls.append((d, t)))
    assert set(METRICS) <= set(rep) and all(isinstance(rep[k], float) for k in METRICS)
    assert rep["num_images"] == 2 and rep["settings"]["flip"] is False and calls[-1] == (2, 2)
    assert (tmp_path / "metrics.json").is_file() and json.loads((tmp_path / "r.json").read_text())


# --------------------------------------------------------------------------------------------- flip test
@pytest.mark.parametrize("family", families())
def test_flip_test_maps_keypoints_through_flip_index(family):
    """A crop and its mirror give mirrored keypoints whose left/right labels are swapped by ``flip_index``."""
    from kanpose_cli.core.inference.pipeline import TopDownPipeline

    torch.manual_seed(0)
    model = create_model(small_variant(family))
    H, W = model.input_size
    crops = np.random.default_rng(0).integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    pipe = TopDownPipeline(model, torch.device("cpu"), flip=True, batch_size=4)  # what the evaluator builds
    k, s = pipe.predict_crops(crops)
    km, sm = pipe.predict_crops(np.ascontiguousarray(crops[:, :, ::-1]))
    fi = list(model.keypoints.flip_index)
    assert np.allclose(km[..., 0], (W - 1) - k[:, fi, 0], atol=0.5)
    assert np.allclose(km[..., 1], k[:, fi, 1], atol=0.5)
    assert np.allclose(sm, s[:, fi], atol=0.01)  # scores: up to edge-bin effects of the flip shift
    # Without the flip-index swap the mirrored result would not match (left/right labels matter).
    assert not np.allclose(km[..., 0], (W - 1) - k[..., 0], atol=0.5)


# ------------------------------------------------------------------------------------------- bad input
def test_missing_annotation_file(tmp_path):
    err = one_line_error(r := invoke("eval", "coco", "--ann", tmp_path / "nope.json", "--images", tmp_path))
    assert r.exit_code != 0 and "nope.json" in err


def test_missing_images_dir(coco_mini, tmp_path):
    r = invoke("eval", "coco", "--ann", coco_mini / ANN, "--images", tmp_path / "missing", "--weights", "random")
    err = one_line_error(r)
    assert r.exit_code != 0 and "missing" in err


def test_corrupt_results_json(coco_mini, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 785, "keypo')
    r = invoke("eval", "coco", "--data", coco_mini, "--results", bad, "--save-dir", tmp_path)
    err = one_line_error(r)
    assert r.exit_code == 1 and "bad.json" in err


def test_unknown_boxes_value(coco_mini, tmp_path):
    r = invoke("eval", "coco", "--data", coco_mini, "--weights", "random", "--boxes", "bogus", "--save-dir", tmp_path)
    err = one_line_error(r)
    assert r.exit_code == 2 and "bogus" in err


def test_unreadable_image_is_skipped_and_reported(coco_mini, tmp_path):
    ann = json.loads((coco_mini / ANN).read_text())
    keep = {139, 34417}
    ann["images"] = [im for im in ann["images"] if im["id"] in keep]
    ann["annotations"] = [a for a in ann["annotations"] if a["image_id"] in keep]
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    images = tmp_path / "images"
    images.mkdir()
    for im in ann["images"]:
        if im["id"] == 139:
            shutil.copy(coco_mini / "val2017" / im["file_name"], images / im["file_name"])
        else:
            (images / im["file_name"]).write_bytes(b"not a jpeg")
    r = invoke("eval", "coco", "--ann", tmp_path / "ann.json", "--images", images, "--weights", "random",
               "--no-flip", "--save-dir", tmp_path / "runs")
    assert r.exit_code == 1
    assert "skipped" in r.output and "1 image could not be read and was left out" in r.output
    metrics = json.loads((tmp_path / "runs" / "exp1" / "metrics.json").read_text())
    assert metrics["num_skipped"] == 1 and metrics["num_images"] == 1


def test_boxes_from_detection_file(coco_mini, tmp_path):
    """``--boxes FILE`` takes person boxes from a COCO detection-results JSON, filtered by ``--box-thr``."""
    inst = json.loads((coco_mini / "annotations" / "instances_val2017.json").read_text())
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 0.9 if i % 2 else 0.1} for i, a in enumerate(inst["annotations"])]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    r = invoke("eval", "coco", "--data", coco_mini, "--weights", "random", "--boxes", tmp_path / "dets.json",
               "--box-thr", "0.5", "--no-flip", "--image-ids", PEOPLE_IDS, "--save-dir", tmp_path)
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "exp1" / "metrics.json").read_text())
    assert metrics["settings"]["boxes"] == "file dets.json (score ≥ 0.5)"
    ids = (139, 34417)
    expected = [d for d in dets if d["image_id"] in ids and d["category_id"] == 1 and d["score"] >= 0.5]
    assert metrics["instances_before_nms"] == len(expected)
