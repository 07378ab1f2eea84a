"""Heatmap decoders of ViTPose (ViTAE-Transformer/ViTPose ``topdown_heatmap_simple_head.py``; spec §2.2).

Module names follow the official ``keypoint_head`` (``deconv_layers``, ``final_layer``) so official weights map
by renaming the prefix only.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ClassicHeatmapHead(nn.Module):
    """Classic decoder: N × [ConvTranspose2d(k 4, s 2, p 1, no bias) → BN → ReLU] then Conv2d 1×1 (bias) → K maps.

    Init: deconv weights N(0, 0.001), BN 1/0, final conv N(0, 0.001) with bias 0.

    Args:
        in_channels: D of the backbone map. num_keypoints: K. deconv_channels: widths (256, 256).

    Forward: (B, D, h, w) -> (B, K, h·2ᴺ, w·2ᴺ) heatmaps (16×12 -> 64×48 with N = 2).
    """

    def __init__(self, in_channels: int, num_keypoints: int = 17, deconv_channels: tuple[int, ...] = (256, 256)):
        super().__init__()
        layers, c = [], in_channels
        for out in deconv_channels:
            layers += [nn.ConvTranspose2d(c, out, 4, stride=2, padding=1, output_padding=0, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c = out
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(c, num_keypoints, 1)
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class SimpleHeatmapHead(nn.Module):
    """Simple decoder: ReLU → bilinear ×``upsample`` (align_corners False) → Conv2d k×k (pad k//2, bias) → K maps
    (ViTPose ``*_simple_coco_256x192.py``: upsample 4, final kernel 3).

    Forward: (B, D, h, w) -> (B, K, h·upsample, w·upsample).
    """

    def __init__(self, in_channels: int, num_keypoints: int = 17, upsample: int = 4, kernel_size: int = 3):
        super().__init__()
        self.upsample = upsample
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, kernel_size, padding=kernel_size // 2)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(F.relu(x), scale_factor=self.upsample, mode="bilinear", align_corners=False)
        return self.final_layer(x)


def build_heatmap_head(kind: str, in_channels: int, num_keypoints: int = 17) -> nn.Module:
    """``"classic"`` -> :class:`ClassicHeatmapHead`, ``"simple"`` -> :class:`SimpleHeatmapHead`; ValueError else."""
    if kind == "classic":
        return ClassicHeatmapHead(in_channels, num_keypoints)
    if kind == "simple":
        return SimpleHeatmapHead(in_channels, num_keypoints)
    raise ValueError(f"decoder must be 'classic' or 'simple', got {kind!r}")
