"""Turning ``--model`` / ``--weights`` into a ready :class:`PoseModel`."""

from __future__ import annotations

from pathlib import Path

import torch

from kanpose_cli.core.checkpoint import load_checkpoint, read_checkpoint_meta
from kanpose_cli.core.errors import WeightsError
from kanpose_cli.core.models.registry import PoseModel, create_model, get_spec, shipped_weights

DEFAULT_MODEL = "amfacpose-r18-256x192"
RANDOM = "random"
RANDOM_LABEL = "RANDOM WEIGHTS (untrained)"


def load_pose_model(model: str | None, weights: str | None, device: torch.device | str = "cpu") -> PoseModel:
    """Resolve the pose model.

    Args:
        model: registry name, or None (the checkpoint's model if ``weights`` is a kanpose checkpoint, else
            :data:`DEFAULT_MODEL`).
        weights: None (the model's shipped weights), ``"random"`` (random initialisation, labelled as such), a
            kanpose ``.safetensors`` checkpoint, or an official/foreign checkpoint the family can convert.

    Raises:
        WeightsError: no trained weights for the model and none given; unreadable or mismatched file.
        UsageError: unknown model name.
    """
    if weights is None:
        name = model or DEFAULT_MODEL
        path = shipped_weights(name)
        if path is None:
            raise WeightsError(
                f"model {name!r} has no trained weights yet; pass --weights FILE (a kanpose .safetensors "
                f"checkpoint or an official checkpoint) or --weights random (untrained, for tests and benchmarks)")
        return load_checkpoint(path, expected_model=name, device=device)
    if weights == RANDOM:
        m = create_model(model or DEFAULT_MODEL)
        m.weights_label = RANDOM_LABEL
        return m.to(device)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix.lower() == ".onnx":  # exported model run by onnxruntime (kanpose export)
        from kanpose_cli.core.engine.onnx_model import load_onnx_model

        return load_onnx_model(path, expected_model=model, device=device)
    if path.suffix == ".safetensors":
        try:
            meta = read_checkpoint_meta(path)
        except WeightsError:
            meta = None
        if meta is not None:
            return load_checkpoint(path, expected_model=model, device=device)
    return _load_foreign(model, path, device)


def _load_foreign(model: str | None, path: Path, device) -> PoseModel:
    """Official checkpoints (ViTPose repo, Hugging Face) through the family's converter."""
    if model is None:
        raise WeightsError(f"{path.name} is not a kanpose checkpoint; say which model it is with --model")
    spec = get_spec(model)
    if spec.convert_state_dict is None:
        raise WeightsError(f"{path.name} is not a kanpose checkpoint and {model} has no converter for foreign weights")
    from kanpose_cli.core.models.convert import load_foreign_weights

    m = create_model(model)
    load_foreign_weights(m, path)
    m.weights_label = path.name
    return m.to(device)
