"""An output folder that cannot be written is found before any work: one line, exit 3 (environment error), and no
model is built. The folder sits under a regular file, so the check fails for root too (tests run as root, where
chmod does not stop writes)."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.errors import OutputError
from kanpose_cli.core.io import PROBE_PREFIX, check_writable

runner = CliRunner()


@pytest.fixture()
def blocked(tmp_path):
    """``<tmp>/afile/sub``: a folder that can never be created (``afile`` is a regular file)."""
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile" / "sub"


@pytest.fixture()
def no_model(monkeypatch):
    """Fail loudly if a command gets as far as building a model."""
    import kanpose_cli.core.weights.loader as loader

    def boom(*args, **kwargs):
        raise AssertionError("a model was loaded before the output folder was checked")

    monkeypatch.setattr(loader, "load_pose_model", boom)
    monkeypatch.setattr(loader, "create_model", boom)
    monkeypatch.setattr("kanpose_cli.core.inference.estimator.PoseEstimator.__init__", boom)


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


def test_check_writable_probe_leaves_nothing(tmp_path, blocked):
    assert check_writable(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert sorted(os.listdir(tmp_path)) == ["afile"]  # no folder created, the probe removed
    assert not any(n.startswith(PROBE_PREFIX) for n in os.listdir(tmp_path))
    with pytest.raises(OutputError, match="afile is a file, not a folder") as err:
        check_writable(blocked, "--save-dir")
    assert err.value.exit_code == 3 and "\n" not in str(err.value)


def test_check_writable_read_only_file_system(tmp_path, monkeypatch):
    """A read-only folder (EROFS, EACCES): what mkstemp raises there is turned into the one-line error."""
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=r"cannot write to --out .*: Read-only file system"):
        check_writable(tmp_path / "x", "--out")


def test_predict_unwritable_save_dir_fails_first(tmp_path, blocked, no_model):
    photos = tmp_path / "photos"
    photos.mkdir()
    import importlib.util
    import shutil
    from pathlib import Path

    bus = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg"
    shutil.copy(bus, photos / "bus.jpg")
    r = runner.invoke(app, ["predict", str(photos), "--weights", "random", "--save-dir", str(blocked)])
    assert r.exit_code == 3, r.output
    line = _one_error_line(r)
    assert line.startswith("error: cannot write to --save-dir") and str(blocked) in line


def test_eval_unwritable_save_dir_fails_first(tmp_path, blocked, no_model):
    ann = tmp_path / "ann.json"
    images = tmp_path / "images"
    images.mkdir()
    ann.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100,
                         "iscrowd": 0, "num_keypoints": 1, "keypoints": [5, 5, 2] + [0] * 48}],
        "categories": [{"id": 1, "name": "person", "keypoints": [str(i) for i in range(17)], "skeleton": []}]}))
    r = runner.invoke(app, ["eval", "coco", "--ann", str(ann), "--images", str(images), "--weights", "random",
                            "--save-dir", str(blocked)])
    assert r.exit_code == 3, r.output
    assert _one_error_line(r).startswith("error: cannot write to --save-dir")


@pytest.mark.parametrize("args", [
    ["label", "{src}", "--out", "{blocked}/labels.json"],
    ["export", "--weights", "random", "--out", "{blocked}/m.onnx", "--no-verify"],
    ["bench", "--quick", "--out", "{blocked}"],
])
def test_other_commands_unwritable_output_fail_first(tmp_path, blocked, no_model, args):
    src = tmp_path / "src"
    src.mkdir()
    r = runner.invoke(app, [a.format(src=src, blocked=blocked) for a in args])
    assert r.exit_code == 3, r.output
    assert "cannot write to" in _one_error_line(r)


def test_train_unwritable_project_fails_first(tmp_path, blocked, no_model, coco_mini):
    r = runner.invoke(app, ["train", "--train-ann", str(coco_mini / "annotations" / "person_keypoints_train2017.json"),
                            "--train-images", str(coco_mini / "train2017"), "--project", str(blocked)])
    assert r.exit_code == 3, r.output
    assert _one_error_line(r).startswith("error: cannot write to --project")
