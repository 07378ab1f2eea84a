"""The Python API (``from kanpose_cli import PoseEstimator``): same results as the CLI on real photos, every input
kind, lazy package exports, and the PoseResult helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
# coco-mini val2017 photos with several people each (bus-like street scene, table, group)
PHOTOS = ("000000311002.jpg", "000000183709.jpg", "000000192699.jpg")


@pytest.fixture(scope="module")
def photos(coco_mini, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        (folder / name).symlink_to(coco_mini / "val2017" / name)
    return folder


@pytest.fixture(scope="module")
def estimator():
    from kanpose_cli import PoseEstimator

    return PoseEstimator()  # the defaults the CLI uses: shipped amfacpose-r18-128x96 + YOLO11n boxes, CPU


def _cli_json(source: Path, out: Path) -> dict[str, dict]:
    r = runner.invoke(app, ["predict", str(source), "--kpt-thr", "0", "--no-save", "--save-dir", str(out)])
    assert r.exit_code == 0, r.output
    return {f.stem: json.loads(f.read_text()) for f in sorted((out / "exp1").glob("*.json"))}


def test_api_and_cli_give_identical_keypoints_on_real_photos(photos, estimator, tmp_path):
    """CLI on a folder == ``est.stream(folder)`` and CLI on one photo == ``est(path)``: the same instances, to the
    last written digit (keypoints, scores, boxes)."""
    cli = _cli_json(photos, tmp_path / "folder")
    assert sorted(cli) == sorted(Path(p).stem for p in PHOTOS)
    api = {Path(r.path).stem: r for r in estimator.stream(photos)}
    assert sorted(api) == sorted(cli)
    persons = 0
    for stem, data in cli.items():
        r = api[stem]
        assert r.keypoints.shape == (len(data["instances"]), 17, 2) and len(r) > 0
        assert r.to_dict(kpt_thr=0.0)["instances"] == data["instances"]
        assert (data["width"], data["height"]) == (r.image_size[1], r.image_size[0])
        persons += len(r)
    assert persons >= 6  # real people were found and estimated
    one = photos / PHOTOS[0]
    single = _cli_json(one, tmp_path / "single")[one.stem]
    assert estimator(str(one)).to_dict(0.0)["instances"] == single["instances"]
    assert json.loads(estimator(one).to_json())["instances"] == single["instances"]


def test_every_input_kind_gives_the_same_result(photos, estimator):
    import cv2
    from PIL import Image

    path = photos / PHOTOS[0]
    ref = estimator(str(path))
    bgr = cv2.imread(str(path))
    for got in (estimator(bgr), estimator(bgr[..., ::-1].copy(), channels="rgb"), estimator(Image.open(path))):
        assert np.array_equal(got.keypoints, ref.keypoints) and np.array_equal(got.boxes, ref.boxes)
    batch = estimator([str(path), bgr])
    assert len(batch) == 2 and np.allclose(batch[1].keypoints, ref.keypoints, atol=0.01)
    assert ref.plot().shape == bgr.shape and ref.plot(bgr, kpt_thr=0.0).dtype == np.uint8
    given = estimator(bgr, boxes=ref.boxes[:1])  # own boxes instead of the detector
    assert len(given) == 1 and np.allclose(given.keypoints[0], ref.keypoints[0], atol=0.01)
    assert given.box_scores.tolist() == [1.0]


def test_api_errors_are_kanpose_errors(tmp_path):
    from kanpose_cli import PoseEstimator
    from kanpose_cli.core.errors import InputError, UsageError

    est = PoseEstimator(weights="random", detector="none")
    with pytest.raises(InputError, match="uint8"):
        est(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InputError, match="no such file|not found|cannot read"):
        est(str(tmp_path / "missing.jpg"))
    with pytest.raises(UsageError, match="--weights does not apply"):
        PoseEstimator("yolo:yolo11n-pose.pt", weights="random")
    with pytest.raises(UsageError, match="unknown --boxes"):
        PoseEstimator(weights="random", boxes="bogus")
    with pytest.raises(UsageError, match="gt needs ground-truth"):
        PoseEstimator(weights="random", boxes="gt")
    r = est(np.zeros((64, 48), np.uint8))  # grey image: one whole-image person
    assert r.boxes.tolist() == [[0, 0, 48, 64]] and r.keypoints.shape == (1, 17, 2)


def test_yolo_pose_model_through_the_same_seam(photos):
    from kanpose_cli import PoseEstimator, PoseResult

    est = PoseEstimator("yolo:yolo11n-pose.pt")
    r = est(photos / PHOTOS[0])
    assert isinstance(r, PoseResult) and r.keypoints.shape[1:] == (17, 2) and len(r) >= 2
    assert est.name == "yolo:yolo11n-pose.pt" and est.box_source is None


def test_package_exports_are_lazy():
    code = ("import sys, kanpose_cli; assert 'torch' not in sys.modules, 'eager torch'; "
            "from kanpose_cli import PoseResult; assert 'torch' not in sys.modules; "
            "from kanpose_cli import PoseEstimator, create_model, list_models; "
            "assert 'amfacpose-r18-256x192' in list_models(); print(PoseEstimator.__name__, sorted(dir(kanpose_cli)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("PoseEstimator") and "create_model" in out.stdout
    with pytest.raises(AttributeError):
        import kanpose_cli

        kanpose_cli.NoSuchThing  # noqa: B018


def test_pose_result_json_and_track_ids():
    from kanpose_cli import PoseResult

    kpts = np.stack([np.linspace(10, 90, 17), np.linspace(20, 80, 17)], axis=1)[None].repeat(2, 0)
    scores = np.full((2, 17), 0.9)
    scores[1, 0] = 0.1
    r = PoseResult([[0, 0, 50, 100], [40, 0, 100, 100]], [0.9, 0.8], kpts, scores, (120, 100), "a.jpg",
                   frame_index=3, time_s=0.1, track_ids=[7, 2])
    d = json.loads(r.to_json(kpt_thr=0.3))
    assert d["frame_id"] == 3 and d["time_s"] == 0.1 and (d["width"], d["height"]) == (100, 120)
    assert [i["track_id"] for i in d["instances"]] == [7, 2] and d["instances"][1]["keypoints"][0] is None
    assert r.select([1]).track_ids.tolist() == [2] and len(r.select(np.array([False, False]))) == 0
    with pytest.raises(ValueError, match="pass plot"):
        r.plot()
    drawn = r.plot(np.zeros((120, 100, 3), np.uint8))
    assert drawn.shape == (120, 100, 3) and drawn.any()


def test_detector_none_works_wherever_it_is_offered(coco_mini, photos, tmp_path):
    """``--detector none`` (the whole image as one person) in predict, label, eval and bench: one box source."""
    r = runner.invoke(app, ["predict", str(photos), "--weights", "random", "--detector", "none", "--no-save",
                            "--save-dir", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    assert all(len(json.loads(f.read_text())["instances"]) == 1 for f in (tmp_path / "p" / "exp1").glob("*.json"))
    out = tmp_path / "labels.json"
    r = runner.invoke(app, ["label", str(photos), "--weights", "random", "--detector", "none", "--kpt-thr", "0",
                            "--box-thr", "0", "--no-flip", "--out", str(out)])
    assert r.exit_code == 0, r.output
    coco = json.loads(out.read_text())
    assert len(coco["images"]) == len(PHOTOS) and len(coco["annotations"]) == len(PHOTOS)
    assert all(a["bbox"][:2] == [0.0, 0.0] for a in coco["annotations"])
    for args in (["--boxes", "detector", "--detector", "none"], ["--boxes", "none"]):
        r = runner.invoke(app, ["eval", "coco", "--data", str(coco_mini), "--weights", "random", *args, "--no-flip",
                                "--image-ids", "139,34417", "--save-dir", str(tmp_path / "e")])
        assert r.exit_code == 0, r.output
    for run in ("exp1", "exp2"):
        metrics = json.loads((tmp_path / "e" / run / "metrics.json").read_text())
        assert metrics["settings"]["boxes"].startswith("none") and metrics["instances_before_nms"] == 2
    r = runner.invoke(app, ["bench", "--quick", "--models", "amfacpose-r18-256x192", "--detector", "none",
                            "--no-peers", "--threads", "1", "--batch", "1", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "b" / "bench.json").read_text())["rows"]
    e2e = {x["model"]: x for x in rows if x["section"] == "e2e"}
    assert e2e["detector none"]["persons"] == 1 and e2e["amfacpose-r18-256x192"]["persons"] == 1
