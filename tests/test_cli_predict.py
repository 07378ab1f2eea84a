"""`kanpose predict` end to end on real photos, and every bad input of the foundation issue."""

import json
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.weights.checkpoint import save_checkpoint
from kanpose_cli.core.models import create_model, list_models

runner = CliRunner()


def bus_jpg() -> Path:
    import importlib.util

    return Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg"


def run(*args):
    result = runner.invoke(app, ["predict", *map(str, args)])
    assert "Traceback" not in (result.output + (result.stderr or ""))
    return result


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def small_image(tmp_path_factory):
    img = cv2.imread(str(bus_jpg()))
    path = tmp_path_factory.mktemp("img") / "bus_small.jpg"
    cv2.imwrite(str(path), cv2.resize(img, (405, 540)))
    return path


def test_main_job_on_a_real_photo_writes_annotated_image_and_json(tmp_path):
    r = run(bus_jpg(), "--weights", "random", "--save-dir", tmp_path, "--save-coco")
    assert r.exit_code == 0, r.stderr
    run_dir = tmp_path / "exp1"
    data = json.loads((run_dir / "bus.json").read_text())
    assert data["width"] == 810 and data["height"] == 1080
    assert data["model"] == "amfacpose-r18-128x96" and "RANDOM" in data["weights"]
    assert data["detector"] == "YOLO yolo11n-pose.pt"
    assert data["keypoint_set"] == "coco17"
    assert data["keypoint_names"][5] == "left_shoulder" and len(data["skeleton"]) == 19
    assert len(data["instances"]) == 4  # the four people of bus.jpg at conf 0.25
    for inst in data["instances"]:
        x1, y1, x2, y2 = inst["bbox"]
        assert 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080
        assert len(inst["keypoints"]) == 17 and len(inst["keypoint_scores"]) == 17
        for kp, s in zip(inst["keypoints"], inst["keypoint_scores"]):
            assert (kp is None) == (s < 0.3)
    img = cv2.imread(str(run_dir / "bus.jpg"))
    assert img.shape == (1080, 810, 3)
    coco = json.loads((run_dir / "coco_results.json").read_text())
    assert len(coco) == 4 and len(coco[0]["keypoints"]) == 51
    assert "4 persons" in r.stderr and "random weights" in r.stderr
    # A second run goes to a new folder.
    assert run(bus_jpg(), "--weights", "random", "--save-dir", tmp_path, "--no-save").exit_code == 0
    assert (tmp_path / "exp2" / "bus.json").is_file() and not (tmp_path / "exp2" / "bus.jpg").exists()


def test_folder_with_bad_files_reports_skips_and_processes_the_rest(tmp_path, small_image):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.jpg").write_bytes(small_image.read_bytes())
    (folder / "b_empty.jpg").write_bytes(b"")
    (folder / "c_text.jpg").write_text("this is not an image\n")
    (folder / "d_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3)
    (folder / "notes.txt").write_text("ignored")
    r = run(folder, "--weights", "random", "--detector", "none", "--save-dir", tmp_path / "out")
    assert r.exit_code == 1
    assert "3 of 4 images could not be read" in r.stderr
    for name in ("b_empty.jpg", "c_text.jpg", "d_corrupt.jpg"):
        assert f"skipped {folder / name}: " in r.stderr  # one whole line per file, however long the path
    assert (tmp_path / "out" / "exp1" / "a_good.json").is_file()
    assert len(list((tmp_path / "out" / "exp1").glob("*.json"))) == 1


@pytest.mark.parametrize("args, code, message", [
    (["does/not/exist.jpg"], 1, "no such file"),
    (["{empty}"], 1, "is empty (0 bytes)"),
    (["{text}"], 1, "not a decodable image"),
    (["{video}"], 1, "cannot open video"),
    (["7"], 1, "cannot open webcam 7"),
    (["{small}", "--device", "cuda"], 3, "asked for CUDA"),
    (["{small}", "--half"], 3, "needs a CUDA device"),
    (["{small}", "--model", "nosuchmodel"], 2, "unknown model"),
    (["{small}", "--weights", "missing.safetensors"], 3, "weights file not found"),
    (["{small}", "--weights", "{otherckpt}", "--model", "amfacpose-r34"], 3, "holds weights of"),
    (["{small}", "--model", "amfacpose-r34"], 3, "has no trained weights yet"),
    (["{small}", "--boxes", "nope.json"], 1, "boxes file not found"),
])
def test_bad_inputs_give_one_line_and_nonzero_exit(tmp_path, small_image, args, code, message):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "clip.mp4").write_text("not a video")
    other = tmp_path / "other.safetensors"
    if "{otherckpt}" in args:
        save_checkpoint(create_model("amfacpose-r18-256x192"), other)
    subst = {"{empty}": tmp_path / "empty.jpg", "{text}": tmp_path / "text.jpg", "{video}": tmp_path / "clip.mp4",
             "{small}": small_image, "{otherckpt}": other}
    argv = [str(subst.get(a, a)) for a in args]
    if "--weights" not in argv and message != "has no trained weights yet":
        argv += ["--weights", "random"]
    if "--detector" not in argv:
        argv += ["--detector", "none"]
    r = run(*argv, "--save-dir", tmp_path / "out")
    assert r.exit_code == code, r.stderr
    lines = error_lines(r)
    assert len(lines) == 1 and message in " ".join(r.stderr.split()), r.stderr


def test_unreadable_folder(tmp_path, monkeypatch, small_image):
    import kanpose_cli.core.data.sources as sources

    folder = tmp_path / "locked"
    folder.mkdir()

    def deny(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sources.os, "scandir", deny)
    r = run(folder, "--weights", "random", "--detector", "none", "--save-dir", tmp_path / "out")
    assert r.exit_code == 1 and "permission denied" in r.stderr


def test_video_source_streams_jsonl_and_annotated_video(tmp_path, small_image):
    video = tmp_path / "clip.mp4"
    frame = cv2.imread(str(small_image))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (frame.shape[1], frame.shape[0]))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    r = run(video, "--weights", "random", "--detector", "none", "--save-dir", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    lines = (tmp_path / "out" / "exp1" / "clip.jsonl").read_text().splitlines()
    head, frames = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    assert head["video"] == str(video) and head["fps"] == pytest.approx(10.0)
    assert [f["frame_id"] for f in frames] == [0, 1, 2] and frames[2]["time_s"] == pytest.approx(0.2)
    cap = cv2.VideoCapture(str(tmp_path / "out" / "exp1" / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3


def test_boxes_file_and_glob_source(tmp_path, small_image):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "000000000785.jpg").write_bytes(small_image.read_bytes())
    boxes = tmp_path / "dets.json"
    boxes.write_text(json.dumps([{"image_id": 785, "category_id": 1, "bbox": [20, 200, 100, 250], "score": 0.8},
                                 {"image_id": 785, "category_id": 1, "bbox": [300, 190, 80, 240], "score": 0.7}]))
    r = run(str(folder / "*.jpg"), "--weights", "random", "--boxes", boxes, "--save-dir", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    data = json.loads((tmp_path / "out" / "exp1" / "000000000785.json").read_text())
    assert [i["bbox"] for i in data["instances"]] == [[20, 200, 120, 450], [300, 190, 380, 430]]


def test_default_model_uses_the_shipped_checkpoint(tmp_path, small_image):
    r = run(small_image, "--detector", "none", "--save-dir", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    data = json.loads((tmp_path / "out" / "exp1" / "bus_small.json").read_text())
    assert data["model"] == "amfacpose-r18-128x96"
    assert data["weights"] == "amfacpose-r18-128x96-coco-lsp.safetensors"


def test_trained_checkpoint_is_used_and_named(tmp_path, small_image):
    ckpt = save_checkpoint(create_model("amfacpose-r18-256x192"), tmp_path / "mine.safetensors")
    r = run(small_image, "--weights", ckpt, "--detector", "none", "--save-dir", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    data = json.loads((tmp_path / "out" / "exp1" / "bus_small.json").read_text())
    assert data["weights"] == "mine.safetensors" and data["model"] == "amfacpose-r18-256x192"


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_runs_in_predict_with_random_weights(tmp_path, small_image, name):
    r = run(small_image, "--model", name, "--weights", "random", "--detector", "none", "--flip",
            "--save-dir", tmp_path, "--no-save")
    assert r.exit_code == 0, r.stderr
    data = json.loads((tmp_path / "exp1" / "bus_small.json").read_text())
    assert data["model"] == name and len(data["instances"]) == 1
    scores = data["instances"][0]["keypoint_scores"]
    assert len(scores) == 17 and all(0.0 <= s <= 1.0 for s in scores)
