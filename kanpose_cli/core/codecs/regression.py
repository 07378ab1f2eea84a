"""Direct coordinate regression codec (FlatPose's "w/ Regression Head (L1 Loss)" ablation, paper Table 5 row 3).

The network outputs (B, K, 2) normalised coordinates ``(x / W, y / H)`` of the model input crop (W, H in pixels,
so a value in [0, 1) covers the crop like SimCC's bins ``b / k`` do). Decoding multiplies back to crop pixels.

Score convention: a regression head has no confidence, so every keypoint scores 1.0 (COCO rescoring then keeps
the box score).
"""

from __future__ import annotations

import numpy as np
import torch

from kanpose_cli.core.codecs.base import KeypointCodec, register_codec

# SimCC settings silently dropped, so that ``create_model(name, codec_overrides={"type": "regression"})`` works on
# a SimCC spec (create_model merges the overrides into the spec's SimCC dict).
_SIMCC_KEYS = frozenset({"split_ratio", "label", "sigma", "label_smoothing", "normalize", "beta", "decode", "window"})


@register_codec
class RegressionCodec(KeypointCodec):
    """Normalised (x, y) regression targets.

    Args:
        input_size: model input ``(H, W)`` pixels.
        **simcc_settings: only the SimCC keys listed in ``_SIMCC_KEYS`` are accepted (and ignored).

    Raises:
        TypeError: any other keyword.
    """

    type = "regression"

    def __init__(self, input_size, **simcc_settings):
        super().__init__(input_size)
        unknown = sorted(set(simcc_settings) - _SIMCC_KEYS)
        if unknown:
            raise TypeError(f"RegressionCodec got unexpected settings: {', '.join(unknown)}")
        H, W = self.input_size
        self._scale = np.array([W, H], dtype=np.float64)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """One instance: (K, 2) crop pixels, (K,) visibility ->
        ``{"target_coords": (K, 2) float32 (x/W, y/H), "target_weight": (K,) float32}``; keypoints with
        visibility < 0.5 or outside the crop ([0, 1] after normalising) get weight 0."""
        norm = np.asarray(keypoints, dtype=np.float64) / self._scale
        vis = np.asarray(visible, dtype=np.float64)
        inside = ((norm >= 0.0) & (norm <= 1.0)).all(axis=1)
        weight = ((vis >= 0.5) & inside).astype(np.float32)
        return {"target_coords": norm.astype(np.float32), "target_weight": weight}

    def decode(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, 2) normalised coords -> ``(keypoints (B, K, 2) crop pixels, scores (B, K) all 1.0)``."""
        scale = torch.tensor(self._scale, dtype=torch.float32, device=outputs.device)
        kpts = outputs.float() * scale
        return kpts, torch.ones(kpts.shape[:2], device=outputs.device)

    def flip_back(self, outputs: torch.Tensor, flip_index) -> torch.Tensor:
        """Outputs for a mirrored crop -> outputs for the original: reorder joints by ``flip_index`` and map
        ``x_n → (W − 1)/W − x_n`` (the UDP pixel flip ``x → W − 1 − x`` in normalised units)."""
        idx = torch.as_tensor(list(flip_index), device=outputs.device)
        out = outputs.index_select(1, idx).clone()
        W = float(self._scale[0])
        out[..., 0] = (W - 1.0) / W - out[..., 0]
        return out

    def config(self) -> dict:
        return {"type": self.type}
