"""Packaging: every subpackage is listed in pyproject.toml, and a built wheel installed into a fresh environment
(not an editable checkout) finds the shipped weights and runs the README's main job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


def test_pyproject_lists_every_package():
    from setuptools import find_packages

    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = sorted(find_packages(str(REPO), include=["kanpose_cli*"]))
    assert sorted(set(listed) - {"kanpose_cli.weights"}) == found
    assert "kanpose_cli.weights" in listed
    shipped = sorted(p.name for p in (REPO / "weights").glob("*.safetensors"))
    assert shipped, "weights/ holds no shipped checkpoint"


def test_package_data_ships_every_data_file():
    """Every file inside the package that is not Python (recipes, the complexity table, the built-in keypoint sets)
    matches a [tool.setuptools.package-data] glob, so the wheel carries it."""
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = {path for package, patterns in package_data.items() if package.startswith("kanpose_cli.")
               or package == "kanpose_cli" for pattern in patterns
               for path in (REPO.joinpath(*package.split("."))).glob(pattern)}
    data = {path for path in (REPO / "kanpose_cli").rglob("*")
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts}
    assert not data - shipped, f"not shipped in the wheel: {sorted(str(p.relative_to(REPO)) for p in data - shipped)}"
    sets = {p.name for p in shipped if p.parent.name == "keypoint_sets"}
    assert {"coco17.json", "lsp14.json", "onehand21.json", "joint_mappings.json"} <= sets


@pytest.mark.slow
def test_wheel_in_fresh_environment_finds_shipped_weights(tmp_path):
    """Build the wheel, install it with no dependencies into a new virtual environment whose only other path is this
    environment's site-packages (so torch etc. resolve, but not the editable checkout), and run from outside the
    repo."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("kanpose-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # dependencies from this environment: a plain path entry, so its editable-install hooks (.pth code) do not run
    deps = next(Path(p) for p in sys.path if p.endswith("site-packages") and (Path(p) / "torch").is_dir())
    (site / "kanpose_deps.pth").write_text(f"{deps}\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600)

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KANPOSE_", "YOLO_", "XDG_", "PYTHON"))}
    env.update(HOME=str(home), PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    where = subprocess.run([str(py), "-c", "import kanpose_cli; print(kanpose_cli.__file__)"], cwd=work, env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not the checkout
    sets = subprocess.run([str(py), "-c", "from kanpose_cli.core.keypoints import KEYPOINT_SETS as S; print(*S)"],
                          cwd=work, env=env, check=True, capture_output=True, text=True).stdout.split()
    builtin = REPO / "kanpose_cli" / "core" / "keypoint_sets"
    assert sorted(sets) == sorted(p.stem for p in builtin.glob("*.json") if p.name != "joint_mappings.json")

    listing = subprocess.run([str(env_dir / "bin" / "kanpose"), "models", "amfacpose-r18-128x96", "--format", "json"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert listing.returncode == 0, listing.stderr[-2000:]
    rows = {r["model"]: r for r in json.loads(listing.stdout)}
    assert rows["amfacpose-r18-128x96"]["weights"] == "amfacpose-r18-128x96-coco-lsp.safetensors"

    proc = subprocess.run([str(env_dir / "bin" / "kanpose"), "predict", "--demo", "--no-save"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    bus = json.loads((work / "runs" / "predict" / "exp1" / "bus.json").read_text())
    assert bus["weights"] == "amfacpose-r18-128x96-coco-lsp.safetensors"
    assert len(bus["instances"]) == 4


def test_every_test_listed_as_slow_exists():
    """conftest.SLOW_TESTS names tests by node id: a renamed or removed test must leave the list, or its
    replacement would silently run in the fast suite."""
    import re

    from conftest import REPO, SLOW_TESTS

    for node in SLOW_TESTS:
        path, name = node.split("::", 1)
        func = name.split("[", 1)[0]
        source = (REPO / path).read_text()
        assert re.search(rf"^def {func}\(", source, re.M), f"{node}: no test {func} in {path}"
