"""The first hour with kanpose (issue 31): --device auto, URL sources served from 127.0.0.1, case-insensitive model
names, unwrapped piped output, plurals, AP as a fraction everywhere, and `eval compare` warning about runs that
used different box sources or flip settings."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import pytest
import torch
import typer
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.device import select_device
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.text import ap_text, plural

runner = CliRunner()


def invoke(*args, **kwargs):
    result = runner.invoke(app, [str(a) for a in args], **kwargs)
    assert "Traceback" not in result.output + (result.stderr or "")
    return result


def bus_jpg() -> Path:
    return Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg"


def kanpose_bin() -> str:
    exe = Path(sys.executable).parent / "kanpose"
    return str(exe) if exe.is_file() else shutil.which("kanpose")


# ------------------------------------------------------------------------------------------------ --device auto

def test_auto_is_cpu_without_cuda_and_cuda_with_it(monkeypatch):
    if torch.cuda.is_available():
        assert select_device("auto") == torch.device("cuda", 0)
    else:
        assert select_device("auto") == torch.device("cpu")
        assert select_device("AUTO") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert select_device("auto") == torch.device("cuda", 0)
    assert select_device("auto", half=True) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert select_device("auto") == torch.device("cpu")
    with pytest.raises(Exception, match="--half .FP16. needs a CUDA device"):
        select_device("auto", half=True)
    with pytest.raises(Exception, match="asked for CUDA, but torch.cuda.is_available.. is False .*0 GPUs"):
        select_device("cuda")  # explicit CUDA never falls back


def _device_defaults() -> dict[str, object]:
    root = typer.main.get_command(app)
    out = {}

    def walk(cmd, prefix):
        if getattr(cmd, "commands", None):  # a group (typer may vendor its own click: no isinstance)
            for name, sub in cmd.commands.items():
                walk(sub, f"{prefix} {name}".strip())
            return
        for p in cmd.params:
            if "--device" in getattr(p, "opts", []):
                out[prefix] = p.default

    walk(root, "")
    return out


def test_every_command_with_a_device_option_defaults_to_auto():
    from kanpose_cli.core.training.config import TrainConfig

    defaults = _device_defaults()
    assert {"predict", "eval coco", "train", "label", "bench", "export"} <= set(defaults)
    assert {k: v for k, v in defaults.items() if k != "train"} == {k: "auto" for k in defaults if k != "train"}
    assert defaults["train"] is None and TrainConfig(model="amfacpose-r18-128x96").device == "auto"


def test_predict_header_names_the_device_auto_chose(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = invoke("predict", bus_jpg(), "--weights", "random", "--detector", "none", "--save-dir", tmp_path)
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stderr.splitlines() if line.startswith("kanpose predict"))
    assert "· device cpu ·" in header


def test_explicit_cuda_without_cuda_still_exits_3(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = invoke("predict", bus_jpg(), "--weights", "random", "--device", "cuda", "--save-dir", tmp_path)
    assert r.exit_code == 3
    assert [ln for ln in r.stderr.splitlines() if ln.strip()][-1].startswith("error: --device cuda asked for CUDA")


# ------------------------------------------------------------------------------------------------ URL sources

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on the test output
        pass


@pytest.fixture(scope="module")
def http_root(tmp_path_factory):
    """A folder served on http://127.0.0.1:PORT/ by http.server in a thread: bus.jpg (smaller), an MJPEG AVI as
    ``clip.avi`` and again as ``live`` (no extension: a stream)."""
    root = tmp_path_factory.mktemp("www")
    image = cv2.resize(cv2.imread(str(bus_jpg())), (405, 540))
    cv2.imwrite(str(root / "bus.jpg"), image)
    small = cv2.resize(image, (202, 270))
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (202, 270))
    for i in range(3):
        writer.write(cv2.flip(small, 1) if i % 2 else small)
    writer.release()
    shutil.copy(root / "clip.avi", root / "live")
    (root / "notes.jpg").write_text("not an image")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_predict_from_an_image_url_gives_the_same_keypoints_as_the_file(http_root, tmp_path, monkeypatch):
    root, base = http_root
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path / "home"))
    args = ("--backend", "torch", "--conf", "0.25")
    r = invoke("predict", root / "bus.jpg", *args, "--save-dir", tmp_path / "file")
    assert r.exit_code == 0, r.output
    r = invoke("predict", f"{base}/bus.jpg", *args, "--save-dir", tmp_path / "url")
    assert r.exit_code == 0, r.output
    assert f"image {base}/bus.jpg" in r.stderr and "1 image, 4 persons" in r.stderr
    from_file = json.loads((tmp_path / "file" / "exp1" / "bus.json").read_text())
    from_url = json.loads((tmp_path / "url" / "exp1" / "bus.json").read_text())  # named after the URL's path
    assert len(from_url["instances"]) == len(from_file["instances"]) == 4
    assert [i["keypoints"] for i in from_url["instances"]] == [i["keypoints"] for i in from_file["instances"]]
    assert [i["bbox"] for i in from_url["instances"]] == [i["bbox"] for i in from_file["instances"]]
    assert sorted(p.name for p in (tmp_path / "url" / "exp1").iterdir()) == ["bus.jpg", "bus.json"]
    downloaded = [p for p in (tmp_path / "home").rglob("*") if p.name.startswith("bus")]
    assert downloaded == []  # the image went to memory, not into the kanpose cache


def test_a_404_url_is_one_error_line_and_exit_1(http_root, tmp_path):
    _, base = http_root
    r = invoke("predict", f"{base}/missing.jpg", "--weights", "random", "--save-dir", tmp_path)
    assert r.exit_code == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [f"error: cannot download {base}/missing.jpg: HTTP 404 File not found"]
    assert not (tmp_path / "exp1").exists()


def test_unreachable_urls_are_input_errors(http_root):
    from kanpose_cli.core.data.sources import open_source

    _, base = http_root
    port = base.rsplit(":", 1)[1]
    with socket_closed() as free:
        with pytest.raises(InputError, match=rf"^cannot download http://127.0.0.1:{free}/a.jpg: Connection refused"):
            open_source(f"http://127.0.0.1:{free}/a.jpg")
        with pytest.raises(InputError, match=rf"^cannot open stream rtsp://127.0.0.1:{free}/live"):
            open_source(f"rtsp://127.0.0.1:{free}/live")
    with pytest.raises(InputError, match=rf"^{base}/notes.jpg is not a decodable image$"):
        open_source(f"{base}/notes.jpg")
    assert port


class socket_closed:
    """A localhost port with nothing listening (bound then closed)."""

    def __enter__(self) -> int:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def __exit__(self, *exc):
        return False


def test_http_stream_and_remote_video_are_read_frame_by_frame(http_root, tmp_path):
    from kanpose_cli.core.data.sources import open_source

    root, base = http_root
    stream = open_source(f"{base}/live")
    assert stream.kind == "stream" and stream.is_stream and stream.total() is None
    frames = list(stream)
    assert len(frames) == 3 and frames[0].image.shape == (270, 202, 3) and frames[0].path == f"{base}/live"
    local = [f.image for f in open_source(str(root / "clip.avi"))]
    assert all((a.image == b).all() for a, b in zip(frames, local))
    video = open_source(f"{base}/clip.avi")
    assert video.kind == "video" and video.total() == 3

    r = invoke("predict", f"{base}/live", "--weights", "random", "--detector", "none", "--save-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "3 frames, 3 persons" in r.stderr
    lines = (tmp_path / "exp1" / "live.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3  # header + one line per frame


# ------------------------------------------------------------------------------------------------ names

def test_model_names_ignore_case_and_suggestions_put_the_right_one_first():
    from kanpose_cli.core.models.registry import canonical_model_name, get_spec
    from kanpose_cli.core.registry import close_matches

    assert canonical_model_name("VitPose-B") == "vitpose-b" and get_spec("VITPOSE-S").name == "vitpose-s"
    assert close_matches("VitPose-B", ["vitpose-s", "vitpose-b", "vitpose-l"])[0] == "vitpose-b"
    with pytest.raises(UsageError, match=r"unknown model 'VitPose-Bx'\. Did you mean: vitpose-b, "):
        get_spec("VitPose-Bx")


def test_cli_model_option_resolves_any_case(tmp_path):
    r = invoke("predict", bus_jpg(), "--model", "AMFACPose-R18-128x96", "--weights", "random", "--detector", "none",
               "--save-dir", tmp_path)
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "exp1" / "bus.json").read_text())
    assert data["model"] == "amfacpose-r18-128x96"
    r = invoke("models", "VitPose-B", "--format", "json")
    assert r.exit_code == 0 and [row["model"] for row in json.loads(r.stdout)] == ["vitpose-b", "vitpose-b-simple"]


def test_published_tag_and_bench_model_lists_ignore_case():
    from kanpose_cli.core.benchmark.benchmark import resolve_models
    from kanpose_cli.core.models.registry import get_published

    assert get_published("vitpose-b", "PLUS").tag == "plus"
    assert resolve_models("VitPose-S,AMFACPOSE-R18") == ["vitpose-s", "amfacpose-r18"]


# ------------------------------------------------------------------------------------------------ piped output

def test_piped_output_keeps_a_long_path_on_one_line(tmp_path):
    deep = tmp_path / ("a_rather_long_folder_name_" * 4) / "photos_of_people"
    deep.mkdir(parents=True)
    shutil.copy(bus_jpg(), deep / "bus.jpg")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "KANPOSE_DEBUG")}
    env["KANPOSE_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([kanpose_bin(), "predict", str(deep), "--weights", "random", "--detector", "none",
                           "--save-dir", str(deep / "runs")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    header = [ln for ln in proc.stderr.splitlines() if ln.startswith("kanpose predict")]
    assert len(header) == 1 and f"1 image in {deep} ·" in header[0] and len(header[0]) > 200
    assert any(f"results in {deep / 'runs' / 'exp1'}" in ln for ln in proc.stderr.splitlines())


def test_soft_wrap_only_for_pipes_without_columns(monkeypatch, tmp_path):
    from kanpose_cli.cli.console import _soft_wrap

    monkeypatch.delenv("COLUMNS", raising=False)
    with open(tmp_path / "log.txt", "w") as f:
        assert _soft_wrap(f) is True
        monkeypatch.setenv("COLUMNS", "80")  # the user asked for a width: rich wraps there again
        assert _soft_wrap(f) is False

    class Terminal:
        def isatty(self):
            return True

    monkeypatch.delenv("COLUMNS")
    assert _soft_wrap(Terminal()) is False


# ------------------------------------------------------------------------------------------------ plurals, AP

def test_plural():
    assert [plural(n, "image") for n in (0, 1, 2)] == ["0 images", "1 image", "2 images"]
    assert plural(1, "person") == "1 person" and plural(3, "person") == "3 persons"
    assert plural(2, "process") == "2 processes" and plural(2, "box") == "2 boxes"
    assert plural(2, "index", "indexes") == "2 indexes"


def test_one_image_one_person_in_the_summary(tmp_path):
    r = invoke("predict", bus_jpg(), "--weights", "random", "--detector", "none", "--save-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "1 image, 1 person, " in r.stderr and "images" not in r.stderr.split("1 image, ")[1].split("·")[0]


def test_ap_text():
    assert ap_text(0.3114) == "0.311" and ap_text(1.0) == "1.000" and ap_text(-1) == "–" and ap_text(None) == "–"
    assert ap_text(-0.0126, signed=True) == "-0.013" and ap_text(0.004, signed=True) == "+0.004"


# ------------------------------------------------------------------------------------------------ eval compare

ANN = Path("annotations") / "person_keypoints_val2017.json"


def _gt_results(coco_mini: Path) -> list[dict]:
    coco = json.loads((coco_mini / ANN).read_text())
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in coco["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]


def test_eval_prints_ap_as_a_fraction_and_compare_warns_about_different_settings(coco_mini, tmp_path):
    results = tmp_path / "gt.json"
    results.write_text(json.dumps(_gt_results(coco_mini)))
    for name in ("a", "b"):
        r = invoke("eval", "coco", "--data", coco_mini, "--results", results, "--save-dir", tmp_path / name)
        assert r.exit_code == 0, r.output
    assert "1.000" in r.stdout and "100.0" not in r.stdout  # ground truth as results: AP 1, printed as 1.000
    # the two runs as if made with different person boxes and flip settings
    for name, boxes, flip in (("a", "gt (annotation boxes)", True), ("b", "detector yolo11n-pose.pt", False)):
        path = tmp_path / name / "exp1" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["settings"].update(boxes=boxes, flip=flip)
        path.write_text(json.dumps(metrics))
    r = invoke("eval", "compare", tmp_path / "a" / "exp1", tmp_path / "b" / "exp1", "--save-dir", tmp_path / "c")
    assert r.exit_code == 0, r.output
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == [
        "warning: the runs used different box sources: a/exp1 gt (annotation boxes), b/exp1 detector "
        "yolo11n-pose.pt; the differences below are not the models' alone",
        "warning: the runs used different flip-test settings: a/exp1 on, b/exp1 off; the differences below are "
        "not the models' alone"]
    assert "+0.000" in r.stdout and "1.000" in r.stdout
    out = json.loads((tmp_path / "c" / "compare1" / "compare.json").read_text())
    assert [d["key"] for d in out["setting_differences"]] == ["boxes", "flip"]
    # same settings: no warning
    r = invoke("eval", "compare", tmp_path / "a" / "exp1", tmp_path / "a" / "exp1", "--save-dir", tmp_path / "c")
    assert r.exit_code == 0 and "warning:" not in r.stderr
