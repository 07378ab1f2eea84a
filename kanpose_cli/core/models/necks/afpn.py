"""AMFACPose's Adaptive Feature Pyramid Network with Dual-Gate Context Blocks (AMFACPose §3.2–3.3; spec §7.2)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class DualGateContextBlock(nn.Module):
    """DGCB: from the global-average-pooled descriptor z (B, C, 1, 1), a context branch ``a = ReLU(W_a z + b_a)``
    and a gating branch ``m = σ(W_m z + b_m)`` (two 1×1 convs C→C); output ``x ⊙ m + a`` broadcast over H×W.

    Reading of the paper's "two 1×1-conv branches with ReLU / sigmoid" (spec §7.2 default). ``mode="se"`` gives
    the alternative SE-style reading (1×1 → ReLU → 1×1 → sigmoid, ``x ⊙ m``).

    (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, mode: str = "dual"):
        super().__init__()
        if mode not in ("dual", "se"):
            raise ValueError(f"unknown DGCB mode {mode!r}")
        self.mode = mode
        self.context = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.mean(dim=(2, 3), keepdim=True)
        if self.mode == "se":
            return x * torch.sigmoid(self.gate(F.relu(self.context(z))))
        return x * torch.sigmoid(self.gate(z)) + F.relu(self.context(z))


class AFPN(nn.Module):
    """Parallel multi-scale fusion: per scale 1×1 conv + BN to F channels, optional DGCB, bilinear upsampling to
    the finest input scale, concatenation, 1×1 fuse conv + BN + ReLU.

    Args:
        in_channels: channels of the selected backbone levels, finest first.
        width: F (128, spec §7.2 budget fit).
        dgcb: apply a DGCB per scale (Table 6 ablation).
        dgcb_mode: see :class:`DualGateContextBlock`.

    Forward: list of (B, C_i, H_i, W_i), finest first -> (B, F, H_0, W_0).
    """

    def __init__(self, in_channels: tuple[int, ...], width: int = 128, dgcb: bool = True, dgcb_mode: str = "dual"):
        super().__init__()
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width)) for c in in_channels
        )
        self.dgcb = nn.ModuleList(
            DualGateContextBlock(width, dgcb_mode) if dgcb else nn.Identity() for _ in in_channels
        )
        self.fuse = nn.Sequential(nn.Conv2d(width * len(in_channels), width, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        self.out_channels = width

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        outs = []
        for x, lat, gate in zip(feats, self.lateral, self.dgcb):
            y = gate(lat(x))
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            outs.append(y)
        return self.fuse(torch.cat(outs, dim=1))
