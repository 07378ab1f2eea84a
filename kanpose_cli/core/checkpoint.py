"""Pose checkpoints: one safetensors file whose header metadata carries the model description.

Metadata key ``"kanpose"`` holds JSON: model name, family, full config, input size, keypoint set and names, codec
settings, mean/std, UDP flag, kanpose version and provenance (free-form dict: data, epochs, metrics ...). Loading
never unpickles code (safetensors only); it validates the name and tensor shapes before building the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from kanpose_cli import __version__
from kanpose_cli.core.errors import WeightsError
from kanpose_cli.core.io import atomic_path
from kanpose_cli.core.models.registry import PoseModel, config_from_dict, create_model, get_spec

META_KEY = "kanpose"


def save_checkpoint(model: PoseModel, path: str | Path, provenance: dict | None = None, half: bool = False) -> Path:
    """Write ``model`` atomically (temp file in the same folder, fsync, then ``os.replace``; see
    :func:`kanpose_cli.core.io.atomic_path`).

    Args:
        model: the model to save. path: target ``.safetensors`` file.
        provenance: JSON-able facts about where the weights come from (training data, epochs, metrics).
        half: store floating tensors as fp16 (halves the file; loads back into fp32).

    Returns:
        The path written.
    """
    path = Path(path)
    meta = model.meta()
    meta["kanpose_version"] = __version__
    meta["provenance"] = provenance or {}
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.half()
        tensors[k] = v
    with atomic_path(path, fsync=True) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
    return path


def read_checkpoint_meta(path: str | Path) -> dict:
    """The metadata dict of a kanpose checkpoint; raises WeightsError if missing/corrupt/not ours."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc})") from None
    if raw is None:
        raise WeightsError(f"{path} is a safetensors file without kanpose metadata (not a kanpose checkpoint)")
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise WeightsError(f"{path}: corrupt kanpose metadata") from None


def load_checkpoint(path: str | Path, expected_model: str | None = None,
                    device: str | torch.device = "cpu") -> PoseModel:
    """Build the model described in a checkpoint and load its weights.

    Args:
        path: ``.safetensors`` file written by :func:`save_checkpoint`.
        expected_model: if given, the checkpoint must belong to this registered model name.
        device: where to put the model.

    Returns:
        :class:`PoseModel` in eval mode, ``weights_label`` set to the file name.

    Raises:
        WeightsError: missing/corrupt file, another model than ``expected_model``, or key/shape mismatch (the
            message names the first few offending keys).
    """
    path = Path(path)
    meta = read_checkpoint_meta(path)
    name = meta.get("model")
    if expected_model is not None and name != expected_model:
        raise WeightsError(f"{path.name} holds weights of {name!r}, not {expected_model!r}; "
                           f"use --model {name} or other weights")
    spec = get_spec(name)
    config = config_from_dict(type(spec.config), meta.get("config", {}))
    overrides = {f: getattr(config, f) for f in config.__dataclass_fields__}
    codec = {k: v for k, v in meta.get("codec", {}).items()}
    model = create_model(name, overrides=overrides, codec_overrides=codec)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"cannot read tensors from {path}: {exc}") from None
    check_state_dict(model, state, source=path.name)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.weights_label = path.name
    return model.to(device).eval()


def check_state_dict(model: torch.nn.Module, state: dict, source: str) -> None:
    """Raise WeightsError naming up to 3 missing, unexpected or mis-shaped keys of ``state`` for ``model``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
    if problems:
        raise WeightsError(f"{source} does not fit {getattr(model, 'name', 'the model')}: " + "; ".join(problems))
