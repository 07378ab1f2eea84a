"""The codec of networks that already output keypoints: ONNX files exported with ``kanpose export --decode``.

Such a network returns ``(keypoints (B, K, 2) float32 crop pixels (x, y), scores (B, K) in [0, 1])``, so decoding
is the identity. The flip test works on those outputs: :meth:`DecodedCodec.flip_back` maps the keypoints of the
mirrored crop back (``x -> W - 1 - x``, the UDP pixel flip, and left/right swapped with the flip index) and the base
class's :meth:`~kanpose_cli.core.codecs.base.KeypointCodec.merge_flip` averages keypoints and scores. This is a
documented deviation from the raw-output path, where logits/heatmaps are merged *before* decoding.
"""

from __future__ import annotations

import numpy as np
import torch

from kanpose_cli.core.codecs.base import KeypointCodec, register_codec
from kanpose_cli.core.errors import UsageError


@register_codec
class DecodedCodec(KeypointCodec):
    """Identity codec for ``(keypoints, scores)`` network outputs (inference only).

    Args:
        input_size: model input ``(H, W)`` pixels. **settings: the settings of the codec the file was exported
            from (kept for the record, not used).
    """

    type = "decoded"

    def __init__(self, input_size, **settings):
        super().__init__(input_size)
        self.settings = dict(settings)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Not available: a decoded-output network cannot be trained.

        Raises:
            UsageError: always.
        """
        raise UsageError("a network that outputs decoded keypoints (ONNX --decode) cannot be trained")

    def decode(self, outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(keypoints (B, K, 2), scores (B, K))`` -> the same pair as float32."""
        kpts, scores = outputs
        return kpts.float(), scores.float()

    def flip_back(self, outputs, flip_index) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints and scores of mirrored crops -> those of the original crops: keypoint ``k`` becomes
        ``flip_index[k]`` and ``x -> W - 1 - x`` (crop pixels)."""
        kpts, scores = outputs
        idx = torch.as_tensor(list(flip_index), device=kpts.device)
        kpts = kpts.index_select(1, idx).clone()
        kpts[..., 0] = (self.input_size[1] - 1.0) - kpts[..., 0]
        return kpts, scores.index_select(1, idx)

    def config(self) -> dict:
        return {"type": self.type, **self.settings}
