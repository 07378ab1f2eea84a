"""Where kanpose looks for and keeps files.

- Cache directory: ``$KANPOSE_HOME`` if set, else ``$XDG_CACHE_HOME/kanpose``, else ``~/.cache/kanpose``. Detector
  weights and ultralytics' settings live there; nothing is written to the working directory.
- Shipped weights: the repository's ``weights/`` folder (next to the ``kanpose_cli`` package in a source checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_WEIGHTS_DIR = PACKAGE_DIR.parent / "weights"


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
