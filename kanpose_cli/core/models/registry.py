"""Model registry: variant name -> :class:`ModelSpec`; :func:`create_model` builds a :class:`PoseModel`.

Explicit dict, filled by importing the family modules in ``kanpose_cli.core.models`` (timm-style: one file per
family, short variant definitions at the bottom of each). Nothing is scanned or downloaded at import time.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from kanpose_cli.core.codecs import KeypointCodec, build_codec
from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.keypoints import KeypointSet, get_keypoint_set
from kanpose_cli.core.paths import cache_dir, shipped_weights_dir

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, run and describe one registered variant.

    Attributes:
        name: registry name used on the command line (``amfacpose-r34``).
        family: family name (``amfacpose``, ``vitpose``, ``kanfpn``, ``flatpose``).
        build: ``build(config) -> nn.Module``; the module maps (B, 3, H, W) normalised RGB crops to the codec's
            output type.
        config: the family's config dataclass for this variant; must have ``input_size`` ``(H, W)`` pixels.
        codec: codec settings dict (``{"type": ..., ...}``), see :mod:`kanpose_cli.core.codecs`.
        loss: loss settings dict (``{"type": ..., ...}``), see :mod:`kanpose_cli.core.models.losses`.
        description: one line for ``kanpose models``.
        keypoint_set: name of the keypoint set (``coco17``).
        mean, std: RGB normalisation of the input in [0, 1] units.
        udp: whether crops use the UDP affine (spec §1.3).
        paper: reference numbers from the paper (``{"ap": ..., "params_m": ..., "gflops": ...}``), for display.
        weights: file name of trained weights shipped in the repository's ``weights/`` folder, or None (found
            there or in the cache by :func:`shipped_weights`).
        convert_state_dict: optional ``fn(state_dict) -> (state_dict, report)`` turning foreign checkpoints
            (official repos, Hugging Face) into this variant's keys.
        codec_for, loss_for: optional ``fn(config) -> dict`` giving the codec/loss settings for an *overridden*
            config (e.g. a FlatPose ``head="regression"`` override needs the regression codec and L1 loss);
            without them ``codec``/``loss`` are used whatever the overrides.
    """

    name: str
    family: str
    build: Callable[[Any], nn.Module]
    config: Any
    codec: dict
    loss: dict
    description: str
    keypoint_set: str = "coco17"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    udp: bool = True
    paper: dict = field(default_factory=dict)
    weights: str | None = None
    convert_state_dict: Callable[[dict], tuple[dict, dict]] | None = None
    codec_for: Callable[[Any], dict] | None = None
    loss_for: Callable[[Any], dict] | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input ``(H, W)`` in pixels."""
        return tuple(self.config.input_size)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a variant; raises ValueError if the name is taken."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(family: str | None = None) -> list[str]:
    """Registered names, in registration order, optionally only one family."""
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def get_spec(name: str) -> ModelSpec:
    """Look up a variant; raises :class:`UsageError` with close matches for unknown names."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else " Run `kanpose models` for the list."
        raise UsageError(f"unknown model {name!r}.{hint}")
    return _REGISTRY[name]


def shipped_weights(model_name: str) -> Path | None:
    """Path of the trained weights shipped for a model (:func:`~kanpose_cli.core.paths.shipped_weights_dir`, then
    ``<cache>/weights``), or None."""
    spec = get_spec(model_name)
    if not spec.weights:
        return None
    for folder in (shipped_weights_dir(), cache_dir() / "weights"):
        if (folder / spec.weights).is_file():
            return folder / spec.weights
    return None


def _coerce(value, annotation):
    """JSON lists back into tuples where the dataclass field is a tuple."""
    origin = typing.get_origin(annotation)
    if isinstance(value, list) and (origin is tuple or annotation is tuple):
        return tuple(value)
    return value


def config_from_dict(config_cls, values: dict):
    """Rebuild a family config dataclass from a JSON dict; raises UsageError for unknown fields."""
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        close = {u: difflib.get_close_matches(u, names, n=1) for u in unknown}
        parts = [f"{u}" + (f" (did you mean {c[0]}?)" if c else "") for u, c in close.items()]
        raise UsageError(f"unknown config field(s) for {config_cls.__name__}: {', '.join(parts)}")
    return config_cls(**{k: _coerce(v, hints.get(k)) for k, v in values.items()})


class PoseModel(nn.Module):
    """A network together with its codec, keypoint set and preprocessing: what every engine runs.

    ``forward`` is the raw network (used by training and export). :meth:`predict` adds the optional flip test and
    the decode.

    Attributes:
        spec: the :class:`ModelSpec` it was created from.
        config: the (possibly overridden) family config.
        net: the network.
        codec: the :class:`KeypointCodec`.
        loss_config: loss settings for training (``{"type": ..., ...}``), matching the codec.
        keypoints: the :class:`KeypointSet`.
    """

    def __init__(self, spec: ModelSpec, config, net: nn.Module, codec: KeypointCodec, loss_config: dict | None = None):
        super().__init__()
        self.spec, self.config, self.net, self.codec = spec, config, net, codec
        self.loss_config = dict(loss_config if loss_config is not None else spec.loss)
        self.keypoints: KeypointSet = get_keypoint_set(spec.keypoint_set)
        self.weights_label = "untrained"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input ``(H, W)`` in pixels."""
        return tuple(self.config.input_size)

    def forward(self, x: torch.Tensor):
        """(B, 3, H, W) normalised RGB -> the codec's output type."""
        return self.net(x)

    @torch.no_grad()
    def predict(self, crops: torch.Tensor, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints of a batch of person crops.

        Args:
            crops: (B, 3, H, W) normalised RGB crops (see :meth:`normalize`).
            flip: flip test: also run the mirrored crops, flip the outputs back with the keypoint set's flip index
                and average before decoding.

        Returns:
            ``(keypoints (B, K, 2) float32 crop pixels (x, y), scores (B, K) in [0, 1])``.
        """
        out = self.net(crops)
        if flip:
            flipped = self.codec.flip_back(self.net(crops.flip(-1)), self.keypoints.flip_index)
            out = self.codec.merge_flip(out, flipped)
        kpts, scores = self.codec.decode(out)
        return kpts.float(), scores.float()

    def normalize(self, crops_rgb_uint8: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float normalised with the spec's mean/std."""
        x = crops_rgb_uint8.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.spec.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def meta(self) -> dict:
        """JSON-able description stored in checkpoints and exported files."""
        return {
            "model": self.spec.name,
            "family": self.spec.family,
            "config": dataclasses.asdict(self.config),
            "input_size": list(self.input_size),
            "keypoint_set": self.keypoints.name,
            "keypoint_names": list(self.keypoints.names),
            "codec": self.codec.config(),
            "loss": self.loss_config,
            "mean": list(self.spec.mean),
            "std": list(self.spec.std),
            "udp": self.spec.udp,
        }


def create_model(name: str, overrides: dict | None = None, codec_overrides: dict | None = None) -> PoseModel:
    """Build a registered variant with random initialisation.

    Args:
        name: registry name.
        overrides: config fields to change (ablation switches, input size ...); unknown fields raise UsageError.
        codec_overrides: codec settings to change.

    Returns:
        :class:`PoseModel` in eval mode.
    """
    spec = get_spec(name)
    config = spec.config
    if overrides:
        values = dataclasses.asdict(config)
        values.update(overrides)
        config = config_from_dict(type(config), values)
    base_codec = spec.codec_for(config) if spec.codec_for is not None else spec.codec
    if codec_overrides and codec_overrides.get("type", base_codec["type"]) != base_codec["type"]:
        base_codec = {}
    codec_cfg = {**base_codec, **(codec_overrides or {})}
    loss_cfg = spec.loss_for(config) if spec.loss_for is not None else spec.loss
    net = spec.build(config)
    model = PoseModel(spec, config, net, build_codec(codec_cfg, tuple(config.input_size)), loss_cfg)
    return model.eval()
