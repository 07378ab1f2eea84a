"""Where kanpose looks for and keeps files.

- Cache directory: ``$KANPOSE_HOME`` if set, else ``$XDG_CACHE_HOME/kanpose``, else ``~/.cache/kanpose``. Detector
  weights and ultralytics' settings live there; nothing is written to the working directory.
- Shipped weights: the repository's top-level ``weights/`` folder. Wheels and plain ``pip install .`` carry it as the
  data package ``kanpose_cli.weights`` (``package-dir`` mapping in pyproject.toml); an editable install maps the same
  package name onto the checkout's folder.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def shipped_weights_dir() -> Path:
    """Folder of the weights that ship with kanpose: the installed ``kanpose_cli.weights`` package, or, when the
    source tree is used without installing it, the checkout's ``weights/`` folder."""
    try:
        spec = importlib.util.find_spec("kanpose_cli.weights")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    return PACKAGE_DIR.parent / "weights"


def cache_dir() -> Path:
    """The kanpose cache directory (created on first use)."""
    env = os.environ.get("KANPOSE_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "kanpose"
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_third_party_files_in_cache() -> None:
    """Point ultralytics' settings and matplotlib's config/font cache into the kanpose cache (``YOLO_CONFIG_DIR``,
    ``MPLCONFIGDIR``), and keep onnxruntime from writing its telemetry device id to
    ``~/.cache/Microsoft/DeveloperTools`` (``ORT_DISABLE_TELEMETRY=1``), unless the user set them, so that kanpose
    writes nothing to ``~/.config``, ``~/.cache`` outside its own folder, or the working directory. Call before
    importing ultralytics, matplotlib or onnxruntime (ultralytics < 8.4 imports matplotlib itself)."""
    root = cache_dir()
    os.environ.setdefault("YOLO_CONFIG_DIR", str(root / "ultralytics"))
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
