"""SimCC heads: feature map -> per-keypoint x/y logits (spec §5.5)."""

from __future__ import annotations

import torch
import torch.nn as nn


class SimCCMLPHead(nn.Module):
    """AMFACPose head (§3.5): 1×1 conv C→K·d, reshape channels into K joints × d ("reshape C into N × d per
    joint"), flatten each joint's d·h·w features, then one MLP per axis shared by all joints:
    ``Linear(d·h·w → hidden) → Mish → Linear(hidden → bins)``.

    Args:
        in_channels: C of the fused map.
        feature_size: (h, w) of the fused map.
        num_keypoints: K. embed_dim: d (1, spec §7.2). hidden: MLP width (64). num_bins: (x-bins, y-bins).
        mlp: use the Mish MLP (AMFACPose); a single Linear per axis (original SimCC upsample-free) if False.

    Forward: (B, C, h, w) -> ``(x_logits (B, K, Wb), y_logits (B, K, Hb))``.
    """

    def __init__(self, in_channels: int, feature_size: tuple[int, int], num_keypoints: int, num_bins: tuple[int, int],
                 embed_dim: int = 1, hidden: int = 64, mlp: bool = True):
        super().__init__()
        self.num_keypoints, self.embed_dim = num_keypoints, embed_dim
        self.proj = nn.Conv2d(in_channels, num_keypoints * embed_dim, 1)
        flat = embed_dim * feature_size[0] * feature_size[1]

        def axis(n_bins: int) -> nn.Module:
            if not mlp:
                return nn.Linear(flat, n_bins)
            return nn.Sequential(nn.Linear(flat, hidden), nn.Mish(inplace=True), nn.Linear(hidden, n_bins))

        self.mlp_x = axis(num_bins[0])
        self.mlp_y = axis(num_bins[1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        feats = self.proj(x).reshape(b, self.num_keypoints, -1)
        return self.mlp_x(feats), self.mlp_y(feats)
