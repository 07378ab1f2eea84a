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
    assert bus["model"] == "amfacpose-r18-256x192"
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
