"""Keypoint codecs (targets <-> keypoints), kept apart from the networks.

``build_codec(config, input_size)`` rebuilds a codec from the dict its ``config()`` returned (as stored in
checkpoints). Codec types register themselves in ``CODECS``.
"""

from __future__ import annotations

from kanpose_cli.core.codecs.base import KeypointCodec
from kanpose_cli.core.codecs.simcc import SimCCCodec

CODECS: dict[str, type[KeypointCodec]] = {SimCCCodec.type: SimCCCodec}


def register_codec(cls: type[KeypointCodec]) -> type[KeypointCodec]:
    """Class decorator / function adding a codec type to ``CODECS``."""
    CODECS[cls.type] = cls
    return cls


def build_codec(config: dict, input_size: tuple[int, int]) -> KeypointCodec:
    """Build a codec from ``config`` (must contain ``"type"``) for a model input of ``(H, W)`` pixels.

    Raises:
        ValueError: unknown codec type.
    """
    cfg = dict(config)
    kind = cfg.pop("type")
    if kind not in CODECS:
        raise ValueError(f"unknown codec type {kind!r}; known: {', '.join(sorted(CODECS))}")
    return CODECS[kind](input_size, **cfg)


# Codec modules that register themselves (imported after register_codec exists).
from kanpose_cli.core.codecs.regression import RegressionCodec  # noqa: E402, F401
from kanpose_cli.core.codecs.heatmap import HeatmapCodec  # noqa: E402, F401

__all__ = ["KeypointCodec", "SimCCCodec", "CODECS", "register_codec", "build_codec"]
