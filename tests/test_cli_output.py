"""What the CLI leaves behind and prints: tables that survive pipes and narrow terminals, machine-readable
``kanpose models``, run folders created only with their first output, atomic writes, silenced third-party logs,
and the default drawer of :class:`PredictionWriter`."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.io import atomic_path, atomic_write, next_run_dir, write_json_atomic
from kanpose_cli.core.keypoints import COCO17
from kanpose_cli.core.results import PoseResult

runner = CliRunner()
PATTERN = "r18"  # a few small models: `kanpose models` counts MACs, which is slow for the big ones


def kanpose_bin() -> str:
    exe = Path(sys.executable).parent / "kanpose"
    return str(exe) if exe.is_file() else shutil.which("kanpose")


def clean_env(tmp: Path, **extra) -> dict:
    """The current environment without kanpose's debug switch or a user's log settings, with a private cache."""
    drop = ("KANPOSE_DEBUG", "OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL", "YOLO_VERBOSE", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["KANPOSE_HOME"] = str(tmp / "kanpose-home")
    env.update(extra)
    return env


def run_cli(args, tmp: Path, cwd: Path | None = None, **env) -> subprocess.CompletedProcess:
    """``kanpose ARGS`` in a subprocess with stdout and stderr piped (not a terminal)."""
    return subprocess.run([kanpose_bin(), *map(str, args)], cwd=cwd or tmp, env=clean_env(tmp, **env),
                          capture_output=True, text=True, timeout=600)


# ----------------------------------------------------------------------------------------------- kanpose models
@pytest.fixture(scope="module")
def models_home(tmp_path_factory):
    """A private kanpose cache, with the JSON listing of the test models (it also fills the MAC cache)."""
    tmp = tmp_path_factory.mktemp("models")
    proc = run_cli(["models", PATTERN, "--format", "json"], tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp, json.loads(proc.stdout)


def test_models_json_lists_every_matching_model_with_params_and_macs(models_home):
    from kanpose_cli.core.models.registry import list_models

    _, rows = models_home
    expected = [n for n in list_models() if PATTERN in n]
    assert len(expected) >= 2
    assert [r["model"] for r in rows] == expected
    for r in rows:
        assert isinstance(r["params"], int) and r["params"] > 100_000
        assert isinstance(r["macs"], int) and r["macs"] > 10**8
        assert len(r["input_size"]) == 2 and all(v >= 64 for v in r["input_size"])
    shipped = {r["model"]: r["weights"] for r in rows}
    assert shipped["amfacpose-r18-128x96"].endswith(".safetensors")


def test_models_csv_has_the_same_models_and_counts_as_json(models_home):
    tmp, rows = models_home
    proc = run_cli(["models", PATTERN, "--format", "csv"], tmp)
    assert proc.returncode == 0, proc.stderr
    records = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["model"] for r in records] == [r["model"] for r in rows]
    for rec, row in zip(records, rows, strict=True):
        assert int(rec["params"]) == row["params"] and int(rec["macs"]) == row["macs"]
        assert [int(rec["input_h"]), int(rec["input_w"])] == row["input_size"]
        assert rec["weights"] == row["weights"] and rec["description"] == row["description"]
        assert rec["paper_ap"] == str(row["paper"].get("ap", ""))


@pytest.mark.parametrize("columns", [None, "60", "30"])
def test_models_table_through_a_pipe_shows_every_cell_in_full(models_home, columns):
    tmp, rows = models_home
    env = {"COLUMNS": columns} if columns else {}
    proc = run_cli(["models", PATTERN, "--wide"], tmp, **env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "…" not in out and "\x1b[" not in out  # nothing cut, no colour codes in a pipe
    for r in rows:
        line = next((ln for ln in out.splitlines() if f"│ {r['model']} " in ln), None)
        assert line is not None, f"{r['model']} not on a table row:\n{out}"
        for cell in (f"{r['input_size'][0]}×{r['input_size'][1]}", f"{r['params'] / 1e6:.2f}",
                     f"{r['macs'] / 1e9:.2f}", r["weights"], r["description"]):
            assert f" {cell} " in line, f"{cell!r} not in full on the row of {r['model']}:\n{line}"


def test_models_with_an_unknown_pattern_is_one_line_usage_error():
    r = runner.invoke(app, ["models", "no-such-model-xyz"])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == ["error: no model name contains 'no-such-model-xyz'; `kanpose models` "
                                             "lists them all"]


def test_print_table_never_cuts_cells_on_a_narrow_console():
    from rich.console import Console
    from rich.table import Table

    from kanpose_cli.cli.console import print_table

    buf = io.StringIO()
    narrow = Console(file=buf, width=30, highlight=False)
    table = Table(title="t")
    for col in ("a-long-column-name", "another-long-column", "third"):
        table.add_column(col, no_wrap=True)
    table.add_row("value-number-one-is-long", "value-two-is-long-too", "/some/very/long/path/file.onnx")
    print_table(table, narrow)
    text = buf.getvalue()
    assert "…" not in text
    for cell in ("a-long-column-name", "another-long-column", "value-number-one-is-long", "value-two-is-long-too",
                 "/some/very/long/path/file.onnx"):
        assert cell in text
    # a table that fits keeps the console's own rendering
    buf2 = io.StringIO()
    small = Table()
    small.add_column("x")
    small.add_row("1")
    print_table(small, Console(file=buf2, width=30))
    assert buf2.getvalue().splitlines()[0] == "┏━━━┓"


# ------------------------------------------------------------------------------------------- lazy run folders
def test_next_run_dir_creates_nothing_until_first_use(tmp_path):
    parent = tmp_path / "runs"
    run = next_run_dir(parent)
    assert not parent.exists() and not run.created
    assert str(run) == str(parent / "exp1")  # what the run would get, shown without creating it
    child = run / "a.json"
    assert str(child) == str(parent / "exp1" / "a.json") and not parent.exists()
    write_json_atomic(child, {"x": 1})  # the first write creates the folder
    assert run.created and json.loads((parent / "exp1" / "a.json").read_text()) == {"x": 1}
    assert Path(run) == parent / "exp1" and run.create() == parent / "exp1"  # idempotent
    # two runs planned at the same moment never share a folder: the number is claimed when created
    r2, r3 = next_run_dir(parent), next_run_dir(parent)
    assert str(r2) == str(r3) == str(parent / "exp2")
    assert r3.create() == parent / "exp2" and r2.create() == parent / "exp3"
    assert sorted(p.name for p in parent.iterdir()) == ["exp1", "exp2", "exp3"]


def _corrupt_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "a_empty.jpg").write_bytes(b"")
    (folder / "b_text.jpg").write_text("not an image\n")
    (folder / "c_png_header.jpg").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    return folder


def test_predict_on_only_corrupt_images_leaves_no_run_folder(tmp_path):
    folder = _corrupt_folder(tmp_path / "in")
    out = tmp_path / "out"
    r = runner.invoke(app, ["predict", str(folder), "--weights", "random", "--detector", "none", "--save-coco",
                            "--save-dir", str(out)])
    assert r.exit_code == 1
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] == \
        ["error: none of the 3 inputs could be read"]
    assert "Traceback" not in r.output + r.stderr and "no output written" in r.stderr
    assert not out.exists()


def test_label_on_only_corrupt_images_writes_no_file(tmp_path):
    folder = _corrupt_folder(tmp_path / "in")
    out = tmp_path / "pseudo.json"
    r = runner.invoke(app, ["label", str(folder), "--weights", "random", "--out", str(out)])
    assert r.exit_code == 1
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] == \
        [f"error: none of the 3 images could be read; {out} not written"]
    assert not out.exists()


# -------------------------------------------------------------------------------------------------- atomic io
def test_atomic_write_replaces_whole_files_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "sub" / "data.json"
    write_json_atomic(target, {"a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2]}
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp.suffix == ".json" and tmp.name.startswith(".tmp-")
            tmp.write_text('{"half": ')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": [1, 2]}  # the old file is intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.json"]  # no temp file left
    png = atomic_write(tmp_path / "img.png", lambda p: cv2.imwrite(str(p), np.full((4, 5, 3), 7, np.uint8)),
                       fsync=True)
    assert cv2.imread(str(png)).shape == (4, 5, 3)  # the temp file kept the suffix the writer needs


# ------------------------------------------------------------------------------------ PredictionWriter drawing
def _one_person(path: str) -> PoseResult:
    kpts = np.stack([np.linspace(40, 160, 17), np.linspace(30, 150, 17)], axis=1)[None]
    return PoseResult(boxes=[[20, 10, 180, 170]], box_scores=[0.9], keypoints=kpts,
                      keypoint_scores=np.full((1, 17), 0.95), image_size=(200, 200), path=path,
                      keypoint_set=COCO17)


def test_prediction_writer_without_draw_uses_the_skeleton_drawer(tmp_path):
    from kanpose_cli.core.draw import draw_poses
    from kanpose_cli.core.data.writers import PredictionWriter

    image = np.full((200, 200, 3), 128, np.uint8)
    result = _one_person("gray.png")
    run = next_run_dir(tmp_path / "runs")
    writer = PredictionWriter(run, header={"model": "m"}, save_json=True, save_coco=True)
    assert writer.draw is draw_poses and not run.created
    writer.write_image(image, result, image_id=1)
    writer.close()
    folder = tmp_path / "runs" / "exp1"
    assert sorted(p.name for p in folder.iterdir()) == ["coco_results.json", "gray.jpg", "gray.json"]
    drawn = cv2.imread(str(folder / "gray.jpg")).astype(int)
    expected = draw_poses(image, result, kpt_thr=0.3).astype(int)
    assert np.abs(drawn - expected).mean() < 3  # the same picture, up to JPEG loss
    assert tuple(expected[30, 40]) == (0, 255, 0)  # keypoint 0 (nose, a centre keypoint) is a green dot
    assert drawn[30, 40][1] - drawn[30, 40][[0, 2]].max() > 60  # still clearly green after JPEG
    assert tuple(expected[10, 100]) == (0, 255, 255)  # the top edge of the person box, in yellow
    assert np.abs(drawn - 128).max() > 100  # something was drawn
    assert json.loads((folder / "gray.json").read_text())["instances"][0]["bbox"] == [20, 10, 180, 170]


def test_prediction_writer_that_wrote_nothing_leaves_no_folder(tmp_path):
    from kanpose_cli.core.data.writers import PredictionWriter

    run = next_run_dir(tmp_path / "runs")
    writer = PredictionWriter(run, header={}, save_coco=True)
    writer.close()
    assert not run.created and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------------- third-party log lines
def test_broken_video_prints_only_kanposes_error_line(tmp_path):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"garbage bytes, not a video\n" * 100)
    args = ["predict", video, "--weights", "random", "--detector", "none", "--save-dir", tmp_path / "out"]
    proc = run_cli(args, tmp_path)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode == 1
    assert lines == [f"error: cannot open video {video} (unsupported or corrupt format)"], lines
    assert not (tmp_path / "out").exists()
    # the same input with KANPOSE_DEBUG=1 shows what was silenced: FFmpeg's own line
    debug = run_cli(args, tmp_path, KANPOSE_DEBUG="1")
    assert debug.returncode == 1 and "moov atom not found" in debug.stdout + debug.stderr


def test_corrupt_image_prints_only_kanposes_error_line(tmp_path):
    image = tmp_path / "corrupt.jpg"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))  # a PNG signature: OpenCV's PNG reader logs an error
    proc = run_cli(["predict", image, "--weights", "random", "--detector", "none", "--save-dir", tmp_path / "out"],
                   tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert out.splitlines() == [f"error: {image} is not a decodable image"], out
    assert "[ERROR" not in out and "global " not in out
    assert not (tmp_path / "out").exists()


def test_writers_follow_a_keypoint_set_other_than_coco(tmp_path):
    """A 21-keypoint hand result: the JSON instances, the COCO results and tracks.csv carry K = 21 in the set's
    order and with its names."""
    from kanpose_cli.core.data.writers import PredictionWriter, TrackCsvWriter
    from kanpose_cli.core.keypoints import get_keypoint_set

    hand = get_keypoint_set("onehand21")
    kpts = np.stack([np.linspace(40, 160, 21), np.linspace(30, 150, 21)], axis=1)[None]
    scores = np.linspace(0.1, 0.9, 21)[None]
    result = PoseResult(boxes=[[20, 10, 180, 170]], box_scores=[0.9], keypoints=kpts, keypoint_scores=scores,
                        image_size=(200, 200), path="hand.png", keypoint_set=hand, track_ids=[3], frame_index=0,
                        time_s=0.0)
    run = next_run_dir(tmp_path / "runs")
    writer = PredictionWriter(run, header={"keypoint_names": list(hand.names)}, save_images=False, save_json=True,
                              save_coco=True)
    writer.write_image(np.zeros((200, 200, 3), np.uint8), result, image_id=7)
    writer.close()
    folder = tmp_path / "runs" / "exp1"
    inst = json.loads((folder / "hand.json").read_text())["instances"][0]
    assert len(inst["keypoints"]) == 21 and inst["keypoints"][0] is None  # 0.1 < kpt_thr 0.3
    assert inst["keypoints"][20] == [160.0, 150.0]
    coco = json.loads((folder / "coco_results.json").read_text())
    assert len(coco[0]["keypoints"]) == 63 and coco[0]["image_id"] == 7
    csv_writer = TrackCsvWriter(tmp_path / "tracks.csv")
    csv_writer.write(result)
    csv_writer.close()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "tracks.csv").read_text())))
    assert [r["keypoint"] for r in rows] == list(hand.names) and rows[4]["keypoint"] == "thumb4"
    assert rows[0]["x"] == "" and rows[-1]["x"] == "160.0" and rows[-1]["track_id"] == "3"
