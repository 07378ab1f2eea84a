"""Pose checkpoints: one safetensors file whose header metadata carries the model card
(:mod:`kanpose_cli.core.weights.card`).

Loading never unpickles code: kanpose checkpoints are safetensors, and foreign ``.pth``/``.pt``/``.bin`` files are
read with ``torch.load(..., weights_only=True)`` (:func:`read_state_dict`). The model name and every tensor shape
are checked before anything is loaded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from kanpose_cli.core.errors import UsageError, WeightsError
from kanpose_cli.core.io import atomic_path
from kanpose_cli.core.models.registry import PoseModel, create_model
from kanpose_cli.core.weights.card import META_KEY, ModelCard, checkpoint_meta, read_model_card

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
# Model-config fields that were removed but are still in the cards of files written before: dropped when reading
# (create_model rejects unknown fields). ``layer_decay`` (ViTPose, KAN-FPN) never changed the network; the
# layer-wise lr decay is a training setting now (``kanpose_cli/core/recipes/<family>.json``).
RETIRED_CONFIG_FIELDS = ("layer_decay",)


def save_checkpoint(model: PoseModel, path: str | Path, provenance: dict | None = None, half: bool = False) -> Path:
    """Write ``model`` atomically (temp file in the same folder, fsync, then ``os.replace``; see
    :func:`kanpose_cli.core.io.atomic_path`).

    Args:
        model: the model to save. path: target ``.safetensors`` file.
        provenance: JSON-able facts about where the weights come from (training data, epochs, metrics, source).
        half: store floating tensors as fp16 (halves the file; loads back into fp32).

    Returns:
        The path written.
    """
    import json

    from safetensors.torch import save_file

    path = Path(path)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.half()
        tensors[k] = v
    with atomic_path(path, fsync=True) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(checkpoint_meta(model, provenance))})
    return path


def model_from_card(card: ModelCard, net: torch.nn.Module | None = None) -> PoseModel:
    """A :class:`PoseModel` built from a card: the registered model with the card's config and codec settings
    (random weights), or around ``net`` when given (a runtime backend).

    Raises:
        UsageError: the card names a model this kanpose does not know, or config fields it does not know.
        WeightsError: a malformed keypoint-set definition in the card.
    """
    config = {k: v for k, v in (card.config or {}).items() if k not in RETIRED_CONFIG_FIELDS}
    return create_model(card.model, overrides=config or None, codec_overrides=card.codec or None, net=net,
                        keypoints=card.keypoints())


def check_expected_model(path: Path, card: ModelCard, expected_model: str | None) -> None:
    """Raise WeightsError when ``expected_model`` is given and the file's card names another model."""
    if expected_model is not None and card.model != expected_model:
        raise WeightsError(f"{path.name} holds {card.model!r}, not {expected_model!r}; use --model {card.model}")


def model_around_exported_net(path: Path, card: ModelCard, net: torch.nn.Module, label: str) -> PoseModel:
    """The :class:`PoseModel` of an exported file (``.onnx``, ``.torchscript.pt``) around its runtime ``net``.

    An export with the decode in its graph (``card.decode``) outputs keypoints already, so its codec becomes the
    ``decoded`` one with the card's settings. ``weights_label`` becomes ``<file name> via <label>``.

    Raises:
        WeightsError: the card names a model or config this kanpose does not know, or keypoint names other than
            the model's set.
    """
    card = replace(card, codec={"type": "decoded", **{k: v for k, v in card.codec.items() if k != "type"}}) \
        if card.decode else card
    try:
        model = model_from_card(card, net=net)
    except UsageError as exc:
        raise WeightsError(f"{path.name}: {exc}") from None
    if card.keypoint_names and list(model.keypoints.names) != list(card.keypoint_names):
        raise WeightsError(f"{path.name}: keypoint names differ from the {model.keypoints.name} set")
    model.weights_label = f"{path.name} via {label}"
    return model.eval()


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
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    card = read_model_card(path)
    if expected_model is not None and card.model != expected_model:
        raise WeightsError(f"{path.name} holds weights of {card.model!r}, not {expected_model!r}; "
                           f"use --model {card.model} or other weights")
    model = model_from_card(card)
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


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a weights file, on the CPU, without running any pickled code.

    Args:
        path: ``.safetensors`` (any, kanpose or not) or ``.pth``/``.pt``/``.bin``/``.ckpt`` (read with
            ``torch.load(weights_only=True)``; the result may still be wrapped, see
            :func:`kanpose_cli.core.weights.convert.unwrap_checkpoint`).

    Raises:
        WeightsError: missing file, unsupported suffix, corrupt file, or a pickle that needs code to load.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", *TORCH_SUFFIXES):
        raise WeightsError(f"unsupported weights file type {suffix!r} (use .safetensors, .pth, .pt, .bin or .onnx)")
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt file, pickled code objects refused by weights_only, ...
        raise WeightsError(f"cannot read weights {path.name}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
