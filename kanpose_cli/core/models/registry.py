"""Model registry: variant name -> :class:`ModelSpec`; :func:`create_model` builds a :class:`PoseModel`.

A :class:`~kanpose_cli.core.registry.Registry` filled by importing the family modules in
``kanpose_cli.core.models`` (timm-style: one file per family, short variant definitions at the bottom of each).
Nothing is scanned or downloaded at import time.

Each spec may list the published checkpoints it can load by name (:class:`PublishedWeights`, like torchvision's
weight enums and timm's pretrained tags). They are plain data here; fetching, verifying and converting them is the
job of :mod:`kanpose_cli.core.weights` (which sits above this package).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from kanpose_cli.core.codecs import KeypointCodec, build_codec
from kanpose_cli.core.config_io import from_dict
from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.keypoints import KeypointSet, get_keypoint_set
from kanpose_cli.core.paths import cache_dir, shipped_weights_dir
from kanpose_cli.core.registry import Registry, close_matches

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PublishedWeights:
    """One published checkpoint that a model loads by name: ``--weights hub`` (the model's first entry) or
    ``--weights hub:TAG``.

    Attributes:
        tag: short name, unique per model (``coco``, ``plus``).
        repo: Hugging Face Hub repository ``OWNER/NAME``.
        revision: branch, tag or commit of the repository (``main``).
        file: file inside the repository (``model.safetensors``).
        sha256: hex SHA-256 of ``file`` at ``revision`` when known; the download is checked against it (else
            against the hub's own LFS SHA-256).
        license: licence of the weights (SPDX id).
        ap: COCO val2017 keypoint AP the authors report for these weights (their person boxes, flip test), or None.
        trained_on: the training data the authors name (``COCO``, ``COCO+AIC+MPII``, ...).
        note: one line for ``kanpose models`` (``ViTPose+ mixture of experts, COCO expert merged``).
    """

    tag: str
    repo: str
    revision: str = "main"
    file: str = "model.safetensors"
    sha256: str | None = None
    license: str = "Apache-2.0"
    ap: float | None = None
    trained_on: str = "COCO"
    note: str = ""

    @property
    def uri(self) -> str:
        """``hf://OWNER/NAME@REVISION`` (plus ``/FILE`` when it is not ``model.safetensors``)."""
        tail = "" if self.file == "model.safetensors" else f"/{self.file}"
        return f"hf://{self.repo}@{self.revision}{tail}"

    def record(self) -> dict:
        """JSON-able dict for ``kanpose models --format json``."""
        return {**dataclasses.asdict(self), "uri": self.uri}


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
        converter: name of the weight converter (registered in :mod:`kanpose_cli.core.weights.convert`) that turns
            foreign checkpoints (official repos, Hugging Face) into this variant's keys, or None.
        published: published checkpoints this variant loads by name (``--weights hub[:TAG]``); the first is the
            default.
        init_from: for variants without published weights of their own, the registered model whose published
            weights ``kanpose train --init hub`` loads into the parts they share (KAN-FPN: ``vitpose-s``).
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
    converter: str | None = None
    published: tuple[PublishedWeights, ...] = ()
    init_from: str | None = None
    codec_for: Callable[[Any], dict] | None = None
    loss_for: Callable[[Any], dict] | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input ``(H, W)`` in pixels."""
        return tuple(self.config.input_size)


MODELS: Registry[ModelSpec] = Registry("model", hint="Run `kanpose models` for the list.")


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a variant; raises ValueError if the name is taken."""
    tags = [w.tag for w in spec.published]
    if len(set(tags)) != len(tags):
        raise ValueError(f"model {spec.name!r}: published weight tags must be unique, got {tags}")
    return MODELS.register(spec.name, spec)


def list_models(family: str | None = None, pattern: str | None = None) -> list[str]:
    """Registered names in registration order, optionally only one family and/or only names matching ``pattern``
    (``vitpose-*``, or a plain substring; see :func:`kanpose_cli.core.registry.name_matches`)."""
    return MODELS.names(pattern, where=None if family is None else (lambda s: s.family == family))


def get_spec(name: str) -> ModelSpec:
    """Look up a variant (case-insensitive: ``VitPose-B`` is ``vitpose-b``); raises :class:`UsageError` with close
    matches for unknown names."""
    return MODELS.get(name)


def canonical_model_name(name: str) -> str:
    """The registered spelling of a model name (``VitPose-B`` -> ``vitpose-b``); raises :class:`UsageError` with
    close matches for unknown names."""
    return MODELS.resolve(name)


def get_published(name: str, tag: str | None = None) -> PublishedWeights:
    """The published checkpoint ``tag`` of model ``name`` (None: its default, the first listed).

    Raises:
        UsageError: unknown model; a model without published weights (the message says which models have them,
            and for KAN-FPN-like models which model's weights ``--init hub`` uses); an unknown tag.
    """
    spec = get_spec(name)
    if not spec.published:
        having = [n for n, s in MODELS.items() if s.published]
        extra = (f"; `kanpose train --model {name} --init hub` starts it from {spec.init_from}'s published weights"
                 if spec.init_from else "")
        raise UsageError(f"model {name!r} has no published weights{extra}. Models with published weights: "
                         f"{', '.join(having)}")
    if tag is None:
        return spec.published[0]
    for w in spec.published:
        if w.tag.lower() == tag.lower():
            return w
    tags = [w.tag for w in spec.published]
    close = close_matches(tag, tags, n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    raise UsageError(f"model {name!r} has no published weights tagged {tag!r} (it has: {', '.join(tags)}).{hint}")


def find_published(repo: str) -> list[tuple[str, PublishedWeights]]:
    """``(model name, entry)`` for every registered model that lists the hub repository ``repo``."""
    return [(n, w) for n, s in MODELS.items() for w in s.published if w.repo == repo]


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


class PoseModel(nn.Module):
    """A network together with its codec, keypoint set and preprocessing: what every backend runs.

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

    def __init__(self, spec: ModelSpec, config, net: nn.Module, codec: KeypointCodec, loss_config: dict | None = None,
                 keypoints: KeypointSet | None = None):
        super().__init__()
        self.spec, self.config, self.net, self.codec = spec, config, net, codec
        self.loss_config = dict(loss_config if loss_config is not None else spec.loss)
        self.keypoints: KeypointSet = keypoints if keypoints is not None else get_keypoint_set(spec.keypoint_set)
        self.weights_label = "untrained"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def backend(self) -> str:
        """What runs the network: ``torch``, or the runtime a non-torch ``net`` names in its ``backend`` attribute
        (``onnxruntime CPUExecutionProvider``)."""
        return getattr(self.net, "backend", "torch")

    def half(self):
        """FP16 weights (``nn.Module.half``).

        Raises:
            UsageError: the network runs outside torch (an ONNX file) and cannot change its precision.
        """
        if not getattr(self.net, "supports_half", True):
            raise UsageError(f"--half is not supported with {self.backend} weights (the file is fp32); drop --half")
        return super().half()

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input ``(H, W)`` in pixels."""
        return tuple(self.config.input_size)

    def forward(self, x: torch.Tensor):
        """(B, 3, H, W) normalised RGB -> the codec's output type."""
        return self.net(x)

    @torch.no_grad()
    def predict(self, crops: torch.Tensor, flip: bool = False,
                net: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints of a batch of person crops.

        Args:
            crops: (B, 3, H, W) normalised RGB crops (see :meth:`normalize`).
            flip: flip test: also run the mirrored crops, flip the outputs back with the keypoint set's flip index
                and average before decoding.
            net: run this network instead of :attr:`net` (the inference copy of
                :func:`~kanpose_cli.core.models.inference.prepare_for_inference`, same outputs up to rounding).

        Returns:
            ``(keypoints (B, K, 2) float32 crop pixels (x, y), scores (B, K) in [0, 1])``.
        """
        net = self.net if net is None else net
        out = net(crops)
        if flip:
            flipped = self.codec.flip_back(net(crops.flip(-1)), self.keypoints.flip_index)
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
            "keypoints": self.keypoints.to_dict(),
            "codec": self.codec.config(),
            "loss": self.loss_config,
            "mean": list(self.spec.mean),
            "std": list(self.spec.std),
            "udp": self.spec.udp,
        }


def create_model(name: str, overrides: dict | None = None, codec_overrides: dict | None = None,
                 net: nn.Module | None = None, keypoints: KeypointSet | None = None) -> PoseModel:
    """Build a registered variant with random initialisation.

    Args:
        name: registry name.
        overrides: config fields to change (ablation switches, input size ...), JSON types allowed (lists for
            tuples); read by :func:`~kanpose_cli.core.config_io.from_dict`.
        codec_overrides: codec settings to change (a different ``type`` replaces the spec's codec settings).
        net: use this network instead of building ``spec.build(config)`` (a runtime backend such as an
            onnxruntime session wrapped as a module; see :mod:`kanpose_cli.core.weights.onnx`).
        keypoints: the keypoint set the model predicts (default: the spec's, COCO-17). Its size K sets the
            config's ``num_keypoints`` (the head's output size); the set travels in :meth:`PoseModel.meta`.

    Returns:
        :class:`PoseModel` in eval mode.

    Raises:
        UsageError: unknown model; an unknown config field (with the closest one) or a value of the wrong type.
    """
    spec = get_spec(name)
    config = spec.config
    if keypoints is not None and getattr(config, "num_keypoints", keypoints.num_keypoints) != keypoints.num_keypoints:
        overrides = {**(overrides or {}), "num_keypoints": keypoints.num_keypoints}
    if overrides:
        try:
            config = from_dict(type(config), {**dataclasses.asdict(config), **overrides})
        except UsageError as exc:
            raise UsageError(f"model {name}: {exc}") from None
    base_codec = spec.codec_for(config) if spec.codec_for is not None else spec.codec
    if codec_overrides and codec_overrides.get("type", base_codec["type"]) != base_codec["type"]:
        base_codec = {}
    codec_cfg = {**base_codec, **(codec_overrides or {})}
    loss_cfg = spec.loss_for(config) if spec.loss_for is not None else spec.loss
    if net is None:
        net = spec.build(config)
    if keypoints is None and getattr(config, "num_keypoints", None) not in (None, get_keypoint_set(spec.keypoint_set)
                                                                              .num_keypoints):
        raise UsageError(f"model {name}: num_keypoints={config.num_keypoints} needs its keypoint set "
                         f"(names, flip pairs); pass the set, e.g. --keypoint-set")
    model = PoseModel(spec, config, net, build_codec(codec_cfg, tuple(config.input_size)), loss_cfg, keypoints)
    return model.eval()
