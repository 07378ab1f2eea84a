"""CoordConv (Liu et al., "An intriguing failing of convolutional neural networks and the CoordConv solution",
NeurIPS 2018; uber-research/CoordConv ``AddCoords``) with AMFACPose's learnable coordinate scale/shift.

Spec §6: each coordinate channel is normalised by **its own** axis length − 1, so corners are exactly ±1 on
non-square maps (the official code and the popular port only behave on square maps). AMFACPose §3.1.1 adds four
learnable scalars: ``x' = α_x·x + β_x``, ``y' = α_y·y + β_y`` (init α = 1, β = 0).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def coordinate_channels(batch: int, height: int, width: int, device=None, dtype=None) -> torch.Tensor:
    """(B, 2, H, W) coordinate channels in [−1, 1]: channel 0 is x (varies along width), channel 1 is y."""
    xs = (torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype) if width > 1
          else torch.zeros(1, device=device, dtype=dtype))
    ys = (torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype) if height > 1
          else torch.zeros(1, device=device, dtype=dtype))
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).unsqueeze(0).expand(batch, 2, height, width)


class AddCoords(nn.Module):
    """Append two coordinate channels: (B, C, H, W) -> (B, C + 2, H, W).

    Args:
        learnable: AMFACPose's learnable affine on the coordinates (α_x, β_x, α_y, β_y); plain CoordConv if False.
    """

    def __init__(self, learnable: bool = True):
        super().__init__()
        self.learnable = learnable
        if learnable:
            self.alpha = nn.Parameter(torch.ones(2))
            self.beta = nn.Parameter(torch.zeros(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        coords = coordinate_channels(b, h, w, device=x.device, dtype=x.dtype)
        if self.learnable:
            coords = coords * self.alpha.view(1, 2, 1, 1).to(x.dtype) + self.beta.view(1, 2, 1, 1).to(x.dtype)
        return torch.cat([x, coords], dim=1)


class CoordConv2d(nn.Module):
    """AddCoords followed by an ordinary ``nn.Conv2d`` with ``in_channels + 2`` inputs; same arguments as Conv2d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, learnable_coords: bool = True):
        super().__init__()
        self.add_coords = AddCoords(learnable_coords)
        self.conv = nn.Conv2d(in_channels + 2, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.add_coords(x))
