"""FlatPose output heads (spec §8.6; paper §3.3.4 and Table 5 row 3).

Both read a feature map (B, C, h, w) (the final tokens reshaped back to the stride-32 grid, or the upsampled map of
the "+ upsampling" ablation) and start like the original upsample-free SimCC head: a 1×1 conv C → K·t that
reshapes the channels into K joints × t features, each joint flattened to t·h·w.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from kanpose_cli.core.models.heads.simcc import SimCCMLPHead


class FlatSimCCHead(SimCCMLPHead):
    """CLS head: Conv1×1 C → K·t, per joint (t·h·w) → ``Linear(t·h·w → Wb)`` and ``Linear(t·h·w → Hb)``
    ("two linear classifiers", paper §3.3.4; spec §8.6 with t = 8: 48·8 = 384 inputs at 256×192).

    Args:
        in_channels: C. feature_size: (h, w). num_keypoints: K. num_bins: (Wb, Hb) = (k·W, k·H). t: per-joint
            channels.

    Forward: (B, C, h, w) -> ``(x_logits (B, K, Wb), y_logits (B, K, Hb))``.
    """

    def __init__(self, in_channels: int, feature_size: tuple[int, int], num_keypoints: int,
                 num_bins: tuple[int, int], t: int = 8):
        super().__init__(in_channels, feature_size, num_keypoints, num_bins, embed_dim=t, mlp=False)


class FlatRegressionHead(nn.Module):
    """Direct-regression head for the paper's "w/ Regression Head (L1 Loss)" ablation (Table 5 row 3; its exact
    form is UNSPEC): Conv1×1 C → K·t, per joint (t·h·w) → ``Linear(→ hidden)`` → GELU → ``Linear(hidden → 2)`` →
    sigmoid, i.e. (x, y) as fractions of the crop width/height (see :class:`~kanpose_cli.core.codecs.regression.
    RegressionCodec`).

    Args:
        in_channels: C. feature_size: (h, w). num_keypoints: K. t: per-joint channels. hidden: MLP width.

    Forward: (B, C, h, w) -> (B, K, 2) in (0, 1), (x, y) order.
    """

    def __init__(self, in_channels: int, feature_size: tuple[int, int], num_keypoints: int, t: int = 8,
                 hidden: int = 512):
        super().__init__()
        self.num_keypoints = num_keypoints
        self.proj = nn.Conv2d(in_channels, num_keypoints * t, 1)
        self.mlp = nn.Sequential(nn.Linear(t * feature_size[0] * feature_size[1], hidden), nn.GELU(),
                                 nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.proj(x).reshape(x.shape[0], self.num_keypoints, -1)
        return torch.sigmoid(self.mlp(feats))
