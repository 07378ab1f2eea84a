"""Keypoint codecs (targets <-> keypoints), kept apart from the networks.

``build_codec(config, input_size)`` rebuilds a codec from the dict its ``config()`` returned (as stored in
checkpoints and exported files). Codec types register themselves in ``CODECS``, a
:class:`~kanpose_cli.core.registry.Registry`.
"""

from __future__ import annotations

from kanpose_cli.core.codecs.base import CODECS, KeypointCodec, register_codec
from kanpose_cli.core.codecs.simcc import SimCCCodec
from kanpose_cli.core.errors import UsageError

CODECS.register(SimCCCodec.type, SimCCCodec)


def build_codec(config: dict, input_size: tuple[int, int]) -> KeypointCodec:
    """Build a codec from ``config`` (must contain ``"type"``) for a model input of ``(H, W)`` pixels.

    Raises:
        UsageError: no ``"type"``, or an unknown codec type (exit code 2; the message names close matches).
    """
    cfg = dict(config)
    if "type" not in cfg:
        raise UsageError(f"codec settings need a 'type' (one of {', '.join(CODECS)}); got {sorted(cfg)}")
    kind = cfg.pop("type")
    return CODECS.get(kind)(input_size, **cfg)


# Codec modules that register themselves (imported after register_codec exists).
from kanpose_cli.core.codecs.regression import RegressionCodec  # noqa: E402, F401
from kanpose_cli.core.codecs.heatmap import HeatmapCodec  # noqa: E402, F401
from kanpose_cli.core.codecs.decoded import DecodedCodec  # noqa: E402, F401

__all__ = ["KeypointCodec", "SimCCCodec", "CODECS", "register_codec", "build_codec"]
