"""Feature Pyramid Network top-down pathway that outputs **P2 only**, with the KAN-FPN-Stem options (Lin et al.,
CVPR 2017; torchvision ``ops/feature_pyramid_network.py`` layout; KAN-FPN-Stem, Tang 2025, §3; spec §3.2–3.4).

``lateral_i = Conv1×1(C_i → F)`` (bias; optionally CBAM after it, or before it); ``P5 = lateral_5``;
``P_i = lateral_i + Upsample_nearest(P_{i+1})``; ``out = Smooth(P2)`` where Smooth is the FPN's 3×3 conv (bias)
or a bottleneck KAGN conv (the paper's change). With ``fuse_kagn`` every top-down merge (P4, P3) is also
followed by a bottleneck KAGN conv whose output feeds the next merge (our reading of the paper's "KAGN-Fuse":
all fusion layers KAGN). Smoothing convs of P3–P5 are not built (only P2 is used).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from kanpose_cli.core.models.layers.attention_blocks import CBAM
from kanpose_cli.core.models.layers.kan import BottleneckKAGNConv2d

_NORMS = {"instance": nn.InstanceNorm2d, "batch": nn.BatchNorm2d}


def bottleneck_kagn(channels: int, degree: int = 3, reduction: float = 4, norm: str = "instance") -> nn.Module:
    """``BottleneckKAGNConv2d(C, C, k 3, padding 1, degree, dim_reduction, norm)`` (spec §3.4 defaults).

    Raises ValueError for an unknown norm (``instance`` | ``batch``)."""
    if norm not in _NORMS:
        raise ValueError(f"kagn_norm must be one of {sorted(_NORMS)}, got {norm!r}")
    return BottleneckKAGNConv2d(channels, channels, 3, degree=degree, padding=1, norm_layer=_NORMS[norm],
                                dim_reduction=reduction)


class Lateral(nn.Module):
    """Lateral connection: [CBAM(C_in)] → Conv1×1(C_in → F, bias) → [CBAM(F)]. (B, C_in, h, w) -> (B, F, h, w)."""

    def __init__(self, in_channels: int, width: int, cbam: str | None = None):
        super().__init__()
        if cbam not in (None, "before", "after"):
            raise ValueError(f"cbam position must be 'before' or 'after', got {cbam!r}")
        self.cbam_before = CBAM(in_channels) if cbam == "before" else nn.Identity()
        self.conv = nn.Conv2d(in_channels, width, 1)
        self.cbam_after = CBAM(width) if cbam == "after" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbam_after(self.conv(self.cbam_before(x)))


class FPNP2(nn.Module):
    """FPN returning the smoothed P2 map.

    Args:
        in_channels: channels of C2..C5 (ResNet-50: 256, 512, 1024, 2048).
        width: F (256).
        lateral_cbam: CBAM on every lateral connection. cbam_position: ``after`` (default, spec §3.3) or
            ``before`` the 1×1 conv.
        smooth: ``conv`` (3×3, bias) or ``kagn`` (bottleneck KAGN) at P2.
        fuse_kagn: bottleneck KAGN after the P4 and P3 merges too.
        kagn_degree, kagn_reduction, kagn_norm: settings of the KAGN convs.

    Forward: [C2 (B, C_2, H/4, W/4), ..., C5] -> (B, F, H/4, W/4).
    """

    def __init__(self, in_channels=(256, 512, 1024, 2048), width: int = 256, lateral_cbam: bool = False,
                 cbam_position: str = "after", smooth: str = "conv", fuse_kagn: bool = False, kagn_degree: int = 3,
                 kagn_reduction: float = 4, kagn_norm: str = "instance"):
        super().__init__()
        if smooth not in ("conv", "kagn"):
            raise ValueError(f"smooth must be 'conv' or 'kagn', got {smooth!r}")
        cbam = cbam_position if lateral_cbam else None
        self.laterals = nn.ModuleList([Lateral(c, width, cbam) for c in in_channels])
        n = len(in_channels)
        # fusion convs for the merged levels above P2 (P3..P_{n-1}); index j fuses level j (0 = P2)
        self.fuse = nn.ModuleList([
            bottleneck_kagn(width, kagn_degree, kagn_reduction, kagn_norm) if (fuse_kagn and 0 < j < n - 1)
            else nn.Identity() for j in range(n - 1)
        ])
        self.smooth = (nn.Conv2d(width, width, 3, padding=1) if smooth == "conv"
                       else bottleneck_kagn(width, kagn_degree, kagn_reduction, kagn_norm))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        p = self.laterals[-1](feats[-1])
        for j in range(len(feats) - 2, -1, -1):
            lat = self.laterals[j](feats[j])
            p = self.fuse[j](lat + F.interpolate(p, size=lat.shape[-2:], mode="nearest"))
        return self.smooth(p)
