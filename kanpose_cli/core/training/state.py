"""The resumable training state: atomic save, RNG states, loading (``weights_only=True``), finding a run to resume.

The state (:meth:`~kanpose_cli.core.training.loop.Trainer.state_dict`) holds tensors, numbers, strings, lists
and dicts only, so :func:`load_state` can use ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from kanpose_cli.core.errors import InputError
from kanpose_cli.core.io import atomic_path

STATE_FORMAT = "kanpose-train-state/1"


def get_rng_state() -> dict:
    """Torch, CUDA, numpy and Python RNG states as tensors/lists/numbers (``weights_only``-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, pystate, pygauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": [int(v) for v in pystate], "gauss": pygauss},
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned (CUDA states only when CUDA is available)."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's global and torch's RNGs with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then ``os.replace`` (a kill never leaves half a
    file; :func:`kanpose_cli.core.io.atomic_path`)."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


def find_resume_state(resume: str, runs_dir: str | Path = "runs/train") -> Path:
    """The state file to resume: ``auto`` (the newest ``<runs_dir>/*/state/last.pt``), a run folder, or a file.

    Raises:
        InputError: nothing to resume.
    """
    if resume == "auto":
        cands = sorted(Path(runs_dir).glob("*/state/last.pt"), key=lambda p: p.stat().st_mtime)
        if not cands:
            raise InputError(f"--resume auto: no run with a checkpoint under {runs_dir}")
        return cands[-1]
    p = Path(resume).expanduser()
    if p.is_dir():
        p = p / "state" / "last.pt"
    if not p.is_file():
        raise InputError(f"--resume {resume}: no training checkpoint found ({p} does not exist)")
    return p


def load_state(path: str | Path) -> dict:
    """Load a training state with ``torch.load(..., weights_only=True)`` onto the CPU.

    Raises:
        InputError: unreadable, or not a kanpose training state (``format`` != :data:`STATE_FORMAT`).
    """
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise InputError(f"cannot read training checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise InputError(f"{path} is not a kanpose training checkpoint")
    return state
