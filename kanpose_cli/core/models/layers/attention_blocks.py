"""Channel/spatial attention blocks used by the families: SE, SCRM (AMFACPose), the ECA rule for its kernel, CBAM
(KAN-FPN-Stem)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al., CVPR 2018): GAP -> 1×1 C→C/r -> ReLU -> 1×1 C/r→C -> sigmoid -> scale.

    (B, C, H, W) -> (B, C, H, W). Args: channels C, reduction r (16).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA-Net's adaptive kernel: t = int(|(log2 C + b) / gamma|), odd (Wang et al., CVPR 2020). 64 -> 3, 256 -> 5."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class SCRM(nn.Module):
    """Spatial–Channel Refinement Module (AMFACPose §3.4.2; spec §7.2).

    Channel branch: adaptive average pool -> 1-D conv across channels (ECA kernel, no bias) -> BN -> sigmoid,
    giving A_c (B, C, 1, 1). Spatial branch: depthwise k×k conv (pad k//2) -> BN(C) -> sigmoid, giving A_s
    (B, C, H, W). Output ``x · A_c · A_s``, shape (B, C, H, W).

    Args:
        channels: C.
        spatial_kernel: depthwise kernel size (UNSPEC in the paper; 7 like CBAM).
        channel_kernel: 1-D kernel size; None applies the ECA rule.
    """

    def __init__(self, channels: int, spatial_kernel: int = 7, channel_kernel: int | None = None):
        super().__init__()
        k = channel_kernel or eca_kernel_size(channels)
        self.channel_conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)
        self.channel_bn = nn.BatchNorm1d(1)
        self.spatial_conv = nn.Conv2d(channels, channels, spatial_kernel, padding=spatial_kernel // 2,
                                      groups=channels, bias=False)
        self.spatial_bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        pooled = x.mean(dim=(2, 3)).view(b, 1, c)
        a_c = torch.sigmoid(self.channel_bn(self.channel_conv(pooled))).view(b, c, 1, 1)
        a_s = torch.sigmoid(self.spatial_bn(self.spatial_conv(x)))
        return x * a_c * a_s


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al., ECCV 2018; official Jongchan/attention-module
    ``MODELS/cbam.py``; spec §3.3): channel gate, then spatial gate.

    Channel gate: average- and max-pool over H×W -> shared MLP (Linear C→C/r with bias, ReLU, Linear C/r→C with
    bias) -> sum -> sigmoid -> scale. Spatial gate: ``[max over C, mean over C]`` -> Conv k×k (2→1, pad k//2, no
    bias) -> BN (eps 1e-5, momentum 0.01) -> sigmoid -> scale.

    Args: channels C, reduction r (16), spatial_kernel k (7). Params for C = 256: 8,564.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial_conv = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        x = x * torch.sigmoid(gate)[:, :, None, None]
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial_bn(self.spatial_conv(pooled)))
