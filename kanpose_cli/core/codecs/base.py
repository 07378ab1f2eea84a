"""The keypoint codec protocol: how keypoints become training targets and how network outputs become keypoints.

Codecs are independent of the networks (mmpose's split). All coordinates a codec sees are pixels of the **model
input crop** (x before y); mapping to original-image pixels is :mod:`kanpose_cli.core.data.transforms`' job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from kanpose_cli.core.registry import Registry

Outputs = Any  # a tensor or a tuple of tensors, as returned by the network's forward


class KeypointCodec(ABC):
    """Base class of all codecs.

    Subclasses define the output type of the networks they serve (e.g. SimCC ``(x_logits, y_logits)``, heatmaps
    ``(B, K, h, w)``) and must implement encode/decode/flip_back. ``config()`` returns a JSON-able dict from which
    :func:`kanpose_cli.core.codecs.build_codec` rebuilds the same codec (it travels inside checkpoints).
    """

    type: str = ""

    def __init__(self, input_size: tuple[int, int]):
        """Args: input_size: model input ``(H, W)`` in pixels."""
        self.input_size = (int(input_size[0]), int(input_size[1]))

    @abstractmethod
    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Make training targets for one instance.

        Args:
            keypoints: (K, 2) float, crop pixels (x, y).
            visible: (K,) float in [0, 1]; 0 means "not labelled" (target weight 0).

        Returns:
            dict of numpy arrays; always has ``"target_weight"`` (K,) float32.
        """

    @abstractmethod
    def decode(self, outputs: Outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode a batch of network outputs.

        Returns:
            ``(keypoints, scores)``: (B, K, 2) float32 crop pixels (x, y) and (B, K) confidences in [0, 1].
        """

    @abstractmethod
    def flip_back(self, outputs: Outputs, flip_index: list[int] | tuple[int, ...]) -> Outputs:
        """Turn the outputs for horizontally mirrored crops into outputs for the original crops
        (swap left/right keypoints with ``flip_index`` and mirror the x axis)."""

    def merge_flip(self, outputs: Outputs, flipped_back: Outputs) -> Outputs:
        """Average original and flipped-back outputs (flip test; logits for SimCC, heatmaps for heatmap codecs)."""
        if isinstance(outputs, (tuple, list)):
            return type(outputs)((a + b) * 0.5 for a, b in zip(outputs, flipped_back))
        return (outputs + flipped_back) * 0.5

    @abstractmethod
    def config(self) -> dict:
        """JSON-able settings, including ``"type"``."""


CODECS: Registry[type[KeypointCodec]] = Registry("codec")
"""Codec types by name (``cls.type``); filled by :func:`register_codec` when :mod:`kanpose_cli.core.codecs` imports
the codec modules. Here, next to the base class, so that a codec module registers itself without importing its own
package (no import cycle)."""


def register_codec(cls: type[KeypointCodec]) -> type[KeypointCodec]:
    """Class decorator / function adding a codec type to ``CODECS`` under ``cls.type``."""
    return CODECS.register(cls.type, cls)
