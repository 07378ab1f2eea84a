"""The README's main-job command, run verbatim as a new user would: a fresh empty home directory, no kanpose or
ultralytics settings, from an empty working directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_main_command() -> str:
    """The first ```bash block under '## Run the main job' in README.md."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Run the main job", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md: no bash block under '## Run the main job'"
    return block.group(1).strip()


def fresh_user_env(home: Path) -> dict:
    """The current environment with an empty HOME and none of kanpose's or ultralytics' settings variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KANPOSE_", "YOLO_", "XDG_")) and k not in {"ULTRALYTICS_CONFIG_DIR"}}
    env["HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_readme_main_command_runs_verbatim_on_a_fresh_home(tmp_path):
    command = readme_main_command()
    assert command.startswith("kanpose predict"), command
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    proc = subprocess.run(["bash", "-c", command], cwd=work, env=fresh_user_env(home), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Ultralytics" not in proc.stdout and "Settings" not in proc.stdout, proc.stdout
    run = work / "runs" / "predict" / "exp1"
    assert sorted(p.name for p in run.iterdir()) == ["bus.jpg", "bus.json", "zidane.jpg", "zidane.json"]
    bus = json.loads((run / "bus.json").read_text())
    assert (bus["width"], bus["height"]) == (810, 1080)
    assert bus["model"] == "amfacpose-r18-128x96"
    assert bus["weights"].endswith(".safetensors")  # the shipped checkpoint, not random weights
    assert len(bus["instances"]) == 4  # the four people standing in front of the bus
    for inst in bus["instances"]:
        assert len(inst["keypoint_scores"]) == 17 and inst["bbox_score"] >= 0.25
    zidane = json.loads((run / "zidane.json").read_text())
    assert len(zidane["instances"]) >= 2
    # nothing written outside the run folder and the kanpose cache (no ~/.config/Ultralytics, no files in cwd)
    assert [p.name for p in work.iterdir()] == ["runs"]
    assert [p.relative_to(home).as_posix() for p in home.iterdir()] == [".cache"]
    assert [p.name for p in (home / ".cache").iterdir()] == ["kanpose"]
    # --backend auto on CPU: the shipped model exported to ONNX once, into the cache, and run by onnxruntime
    assert len(list((home / ".cache" / "kanpose" / "onnx").glob("amfacpose-r18-128x96-*.onnx"))) == 1
    assert "backend onnxruntime CPUExecutionProvider" in " ".join(proc.stderr.split())


def readme_python_example() -> str:
    """The first ```python block under '## Python API' in README.md."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README.md: no python block under '## Python API'"
    return block.group(1)


def test_readme_python_example_runs(tmp_path):
    """The API example, run as written with ultralytics' bus.jpg and a 4-frame clip made from it (moving right)."""
    import importlib.util

    import cv2
    import numpy as np

    bus = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg"
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    image = cv2.imread(str(bus))
    (work / "bus.jpg").write_bytes(bus.read_bytes())
    small = cv2.resize(image, (405, 540))
    writer = cv2.VideoWriter(str(work / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (405, 540))
    for t in range(4):
        writer.write(cv2.warpAffine(small, np.float32([[1, 0, 2 * t], [0, 1, 0]]), (405, 540)))
    writer.release()
    proc = subprocess.run([sys.executable, "-c", readme_python_example()], cwd=work, env=fresh_user_env(home),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "(4, 17, 2)" and lines[1] == "(4, 17)", lines  # the four people in front of the bus
    frames = [ln for ln in lines if ln.split()[0].isdigit()]
    assert [ln.split()[0] for ln in frames] == ["0", "1", "2", "3"], lines
    ids = [set(ln.split("[", 1)[1].rstrip("]").split()) for ln in frames]
    assert ids[0] == {"1", "2", "3", "4"} and all(i <= ids[0] for i in ids), lines  # no new ids: the same people
