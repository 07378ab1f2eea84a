"""KAN convolutions: Gram-polynomial (KAGN), bottleneck KAGN, Chebyshev (KACN), and the RKAN stage plug-in.

Re-implemented from the descriptions in spec §4 (torch-conv-kan ``kagn_conv.py`` / ``kagn_bottleneck_conv.py`` /
``kacn_conv.py`` by I. Drokin; RKAN: Yu, Wu, Gui, "Residual Kolmogorov-Arnold Network", arXiv 2410.05500, official
code withray/residualKAN). Deliberate differences from the reference code (spec §4.1):

- ``padding`` defaults to "same" (``dilation·(k−1)//2``) instead of 0; pass it explicitly to get anything else.
- No ``lru_cache`` around the polynomial basis (the reference keys it on tensor objects and can keep up to 128
  activations and their graphs alive).
- ``degree >= 1`` is required (the reference's degree-0 branch returns a tensor of the wrong rank).
- Groups are computed with one grouped convolution instead of a Python loop over per-group convolutions; the
  parameter count and the maths are the same. The normalisation is applied once over all output channels, which
  equals the reference's per-group norms for channel-wise norms (InstanceNorm2d, BatchNorm2d — the only ones used).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "gram_basis",
    "KAGNConv2d",
    "BottleneckKAGNConv2d",
    "KACNConv2d",
    "ChebyKANDepthwiseConv2d",
    "RKANBlock",
    "RKANStage",
]


def _check_degree(degree: int) -> int:
    if int(degree) < 1:
        raise ValueError(f"KAN polynomial degree must be >= 1, got {degree}")
    return int(degree)


def _same_padding(kernel_size: int, dilation: int, padding: int | None) -> int:
    return dilation * (kernel_size - 1) // 2 if padding is None else int(padding)


def _check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    if groups <= 0 or in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")


def gram_beta(beta_weights: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Gram recurrence coefficient β(n, m) = w_n · (m+n)(m−n)·n² / (m² / (4n² − 1)) (spec §4.1)."""
    return beta_weights[n] * ((m + n) * (m - n) * n**2) / (m**2 / (4.0 * n**2 - 1.0))


def gram_basis(t: torch.Tensor, beta_weights: torch.Tensor, degree: int) -> torch.Tensor:
    """Gram polynomials P_0..P_degree of ``t``, concatenated along channels **degree-major**.

    P_0 = 1, P_1 = t, P_n = t·P_{n−1} − β(n−1, n)·P_{n−2}. With all ``beta_weights`` zero, P_n = tⁿ.

    Args:
        t: (B, C, H, W), usually ``tanh(x)`` in (−1, 1).
        beta_weights: (degree + 1,) learnable scalars w_0..w_degree (only w_1..w_{degree−1} are used).
        degree: ≥ 1.

    Returns:
        (B, C·(degree+1), H, W): ``[P_0(all C), P_1(all C), ...]``.
    """
    degree = _check_degree(degree)
    p0, p1 = torch.ones_like(t), t
    basis = [p0, p1]
    for n in range(2, degree + 1):
        p2 = t * p1 - gram_beta(beta_weights, n - 1, n) * p0
        basis.append(p2)
        p0, p1 = p1, p2
    return torch.cat(basis, dim=1)


def _group_degree_major(basis: torch.Tensor, degree: int, groups: int) -> torch.Tensor:
    """Reorder a degree-major basis (B, (d+1)·C, H, W) so each group's (d+1)·C/g channels are contiguous
    (degree-major inside the group), ready for a grouped convolution."""
    if groups == 1:
        return basis
    b, _, h, w = basis.shape
    x = basis.view(b, degree + 1, groups, -1, h, w).transpose(1, 2)
    return x.reshape(b, -1, h, w)


class KAGNConv2d(nn.Module):
    """Gram-polynomial KAN convolution (torch-conv-kan ``KAGNConv2DLayer``; spec §4.1).

    ``y = SiLU(Norm(Conv_k(SiLU(x)) + Conv_k(SiLU(GramBasis(tanh(x))))))``, per group, no biases.

    Args:
        in_channels, out_channels: C_in, C_out (both divisible by ``groups``).
        kernel_size: k. degree: Gram polynomial degree (≥ 1). groups: channel groups.
        padding: default None = "same" (``dilation·(k−1)//2``). stride, dilation: as for ``nn.Conv2d``.
        dropout: Dropout2d probability on ``tanh(x)`` (training only; 0 = off).
        norm_layer: norm class built as ``norm_layer(C_out, **norm_kwargs)`` (InstanceNorm2d: affine False).

    Params: ``C_in·C_out·k²/g·(degree + 2) + (degree + 1)`` (+ affine norm); 256→256, k3, d3: 2,949,124.

    Shapes: (B, C_in, H, W) -> (B, C_out, H', W') with the usual convolution arithmetic.

    Raises:
        ValueError: degree < 1 or groups not dividing the channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, degree: int = 3, groups: int = 1,
                 padding: int | None = None, stride: int = 1, dilation: int = 1, dropout: float = 0.0,
                 norm_layer: type[nn.Module] = nn.InstanceNorm2d, **norm_kwargs):
        super().__init__()
        _check_groups(in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.degree, self.groups = _check_degree(degree), groups
        self.stride, self.dilation = stride, dilation
        self.padding = _same_padding(kernel_size, dilation, padding)
        cin_g = in_channels // groups
        self.base_weight = nn.Parameter(torch.empty(out_channels, cin_g, kernel_size, kernel_size))
        self.poly_weight = nn.Parameter(torch.empty(out_channels, cin_g * (self.degree + 1), kernel_size, kernel_size))
        self.beta_weights = nn.Parameter(torch.empty(self.degree + 1))
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.norm = norm_layer(out_channels, **norm_kwargs)
        nn.init.kaiming_uniform_(self.base_weight, nonlinearity="linear")
        nn.init.kaiming_uniform_(self.poly_weight, nonlinearity="linear")
        nn.init.normal_(self.beta_weights, 0.0, 1.0 / (kernel_size**2 * in_channels * (self.degree + 1.0)))

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self._conv(F.silu(x), self.base_weight)
        t = self.dropout(torch.tanh(x))
        basis = _group_degree_major(gram_basis(t, self.beta_weights, self.degree), self.degree, self.groups)
        poly = self._conv(F.silu(basis), self.poly_weight)
        return F.silu(self.norm(poly + base))


class NoiseInjection(nn.Module):
    """torch-conv-kan's "dropout" of the bottleneck layers (spec §4.2): in training,
    ``x + alpha · M ⊙ ε · std_c(x)`` with ``M ~ Bernoulli(p)``, ``ε ~ N(0, 1)``, std per channel over (N, H, W).
    Identity in eval mode or with ``p = 0``. Shape preserved."""

    def __init__(self, p: float = 0.0, alpha: float = 0.05):
        super().__init__()
        self.p, self.alpha = float(p), float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        std = x.std(dim=(0, 2, 3), keepdim=True)
        mask = torch.bernoulli(torch.full_like(x, self.p))
        return x + self.alpha * mask * torch.randn_like(x) * std


class BottleneckKAGNConv2d(nn.Module):
    """Bottleneck Gram KAN convolution (torch-conv-kan ``BottleNeckKAGNConv2DLayer``; spec §4.2), used as the
    KAN-FPN-Stem's P2 smoothing conv.

    Per group: ``base = Conv_k(SiLU(x))``; ``z = tanh(Conv1×1(x))`` (C_in/g → r); Gram basis of z (degree-major),
    SiLU, ``Conv_k`` (r·(d+1) → r); ``Conv1×1`` (r → C_out/g); ``y = SiLU(Norm(out + base))``. No biases.
    Inner width ``r = int(max(C_in/g, C_out/g) / dim_reduction)``, raised to ``min(16, C_in/g, C_out/g)`` if < 16.

    Args:
        in_channels, out_channels, kernel_size, degree, groups, padding (None = "same"), stride, dilation: as
            :class:`KAGNConv2d`.
        dropout: noise-injection probability (training only; see :class:`NoiseInjection`), not Dropout2d.
        norm_layer, norm_kwargs: output norm (InstanceNorm2d by default).
        dim_reduction: bottleneck factor (4 → r = 64 for 256 channels).

    Params: ``g·[(C_in/g)(C_out/g)k² + (C_in/g)r + r(C_out/g) + r²(d+1)k²] + (d+1)``; 256→256, k3, d3, red 4:
    770,052 (red 8: 643,076).

    Shapes: (B, C_in, H, W) -> (B, C_out, H', W').

    Raises:
        ValueError: degree < 1 or groups not dividing the channels.
    """

    min_internal = 16

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, degree: int = 3, groups: int = 1,
                 padding: int | None = None, stride: int = 1, dilation: int = 1, dropout: float = 0.0,
                 norm_layer: type[nn.Module] = nn.InstanceNorm2d, dim_reduction: float = 4, **norm_kwargs):
        super().__init__()
        _check_groups(in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.degree, self.groups = _check_degree(degree), groups
        self.stride, self.dilation = stride, dilation
        self.padding = _same_padding(kernel_size, dilation, padding)
        cin_g, cout_g = in_channels // groups, out_channels // groups
        r = int(max(cin_g / dim_reduction, cout_g / dim_reduction))
        if r < self.min_internal:
            r = min(self.min_internal, cin_g, cout_g)
        self.inner = r
        self.noise = NoiseInjection(dropout)
        self.base_weight = nn.Parameter(torch.empty(out_channels, cin_g, kernel_size, kernel_size))
        self.inner_proj = nn.Parameter(torch.empty(groups * r, cin_g, 1, 1))
        self.poly_weight = nn.Parameter(torch.empty(groups * r, r * (self.degree + 1), kernel_size, kernel_size))
        self.out_proj = nn.Parameter(torch.empty(out_channels, r, 1, 1))
        self.beta_weights = nn.Parameter(torch.empty(self.degree + 1))
        self.norm = norm_layer(out_channels, **norm_kwargs)
        for w in (self.base_weight, self.inner_proj, self.poly_weight, self.out_proj):
            nn.init.kaiming_uniform_(w, nonlinearity="linear")
        nn.init.normal_(self.beta_weights, 0.0, 1.0 / (kernel_size**2 * in_channels * (self.degree + 1.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.noise(x)
        g = self.groups
        base = F.conv2d(F.silu(x), self.base_weight, None, self.stride, self.padding, self.dilation, g)
        z = torch.tanh(F.conv2d(x, self.inner_proj, groups=g))
        basis = _group_degree_major(gram_basis(z, self.beta_weights, self.degree), self.degree, g)
        poly = F.conv2d(F.silu(basis), self.poly_weight, None, self.stride, self.padding, self.dilation, g)
        out = F.conv2d(poly, self.out_proj, groups=g)
        return F.silu(self.norm(out + base))


def chebyshev_features(t: torch.Tensor, degree: int) -> torch.Tensor:
    """Chebyshev polynomials T_0..T_degree of ``t`` ∈ [−1, 1], laid out **channel-major**.

    Computed as ``cos(n·arccos(clamp(t, −1+1e−7, 1−1e−7)))`` (torch-conv-kan KACN; spec §4.3).

    Args:
        t: (B, C, H, W). degree: ≥ 1.

    Returns:
        (B, C·(degree+1), H, W): ``[c0·T0..c0·Td, c1·T0, ...]``.
    """
    degree = _check_degree(degree)
    theta = torch.acos(t.clamp(-1.0 + 1e-7, 1.0 - 1e-7)).unsqueeze(2)  # (B, C, 1, H, W)
    n = torch.arange(degree + 1, device=t.device, dtype=t.dtype).view(1, 1, -1, 1, 1)
    feats = torch.cos(theta * n)
    b, c, _, h, w = feats.shape
    return feats.reshape(b, c * (degree + 1), h, w)


class KACNConv2d(nn.Module):
    """Chebyshev KAN convolution (torch-conv-kan ``KACNConv2DLayer``; spec §4.3).

    ``y = Dropout(Norm(Conv_k(ChebyshevFeatures(tanh(x)))))`` — one k×k conv over (degree+1)·C_in/g features per
    group, no bias, no base branch, no output activation. Init N(0, 1/(C_in·(degree+1)·k²)).

    Args:
        in_channels, out_channels, kernel_size, degree (≥ 1), groups, padding (None = "same"), stride, dilation:
            as :class:`KAGNConv2d`.
        dropout: Dropout2d probability after the norm (0 = off). norm_layer, norm_kwargs: output norm.

    Params: ``C_in·C_out·(degree+1)·k²/g`` (+ affine norm).

    Shapes: (B, C_in, H, W) -> (B, C_out, H', W').

    Raises:
        ValueError: degree < 1 or groups not dividing the channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, degree: int = 3, groups: int = 1,
                 padding: int | None = None, stride: int = 1, dilation: int = 1, dropout: float = 0.0,
                 norm_layer: type[nn.Module] = nn.InstanceNorm2d, **norm_kwargs):
        super().__init__()
        _check_groups(in_channels, out_channels, groups)
        self.degree, self.groups = _check_degree(degree), groups
        self.stride, self.dilation = stride, dilation
        self.padding = _same_padding(kernel_size, dilation, padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups * (self.degree + 1),
                                               kernel_size, kernel_size))
        nn.init.normal_(self.weight, 0.0, 1.0 / (in_channels * (self.degree + 1) * kernel_size**2))
        self.norm = norm_layer(out_channels, **norm_kwargs)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = chebyshev_features(torch.tanh(x), self.degree)
        y = F.conv2d(feats, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        return self.dropout(self.norm(y))


class ChebyKANDepthwiseConv2d(nn.Module):
    """RKAN's KAN convolution: one Chebyshev KAN (k² inputs → 1 output) shared by **all** channels, applied to
    every k×k patch of every channel (withray/residualKAN ``KAN_Convolutional_Layer`` with ``ChebyKANLinear``;
    spec §4.4; RKAN paper Appendix D).

    For a zero-padded patch ``p`` (k² values): ``out = Σ_i b_i·p_i + Σ_i Σ_n c_{i,n}·s_i·T_n(tanh p_i)``, with the
    base linear on the raw input (no SiLU), Chebyshev T_n from the recurrence T_n = 2tT_{n−1} − T_{n−2}, per-edge
    scaler ``s`` (init 1) and coefficients ``c`` (init N(0, 1/(k²·(degree+1)))). Implemented without unfolding:
    the input is zero-padded first (so padded positions contribute T_n(tanh 0) exactly as in the patch-based
    reference), then the polynomial features are convolved with ``c·s``.

    Args:
        kernel_size: k (3). stride: 1 or 2. padding: None = k//2 (explicit zero padding). degree: ≥ 1.

    Params: ``k² + k²·(degree+1) + k²`` = 54 for k 3, degree 3.

    Shapes: (B, C, H, W) -> (B, C, H', W') (channels unchanged; any C).

    Raises:
        ValueError: degree < 1.
    """

    def __init__(self, kernel_size: int = 3, stride: int = 1, padding: int | None = None, degree: int = 3):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = kernel_size // 2 if padding is None else int(padding)
        self.degree = _check_degree(degree)
        k2 = kernel_size * kernel_size
        self.base_weight = nn.Parameter(torch.empty(1, 1, kernel_size, kernel_size))
        self.cheby_coeffs = nn.Parameter(torch.empty(self.degree + 1, kernel_size, kernel_size))
        self.scaler = nn.Parameter(torch.ones(1, 1, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        nn.init.normal_(self.cheby_coeffs, 0.0, 1.0 / (k2 * (self.degree + 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b * c, 1, h, w)
        p = self.padding
        if p:
            x = F.pad(x, (p, p, p, p))
        t = torch.tanh(x)
        polys = [torch.ones_like(t), t]
        for _ in range(2, self.degree + 1):
            polys.append(2 * t * polys[-1] - polys[-2])
        feats = torch.cat(polys[: self.degree + 1], dim=1)  # (BC, d+1, H+2p, W+2p)
        weight = (self.cheby_coeffs.unsqueeze(0) * self.scaler)  # (1, d+1, k, k)
        y = F.conv2d(x, self.base_weight, stride=self.stride) + F.conv2d(feats, weight, stride=self.stride)
        return y.reshape(b, c, y.shape[-2], y.shape[-1])


class RKANBlock(nn.Module):
    """The RKAN residual branch (RKAN paper §3, single-KAN-conv variant; withray/residualKAN ``RKAN_ResNet``;
    spec §4.4): ``BN(Conv1×1_expand(ChebyKANConv3×3(Conv1×1_reduce(x))))``.

    Args:
        in_channels: C_in of the wrapped stage's input. out_channels: C_out of the stage's output.
        stride: the stage's spatial stride (applied by the KAN conv). reduce_factor: r (C_in → C_in/r).
        degree: Chebyshev degree (3). kernel_size: KAN conv size (3, padding k//2).

    Shapes: (B, C_in, H, W) -> (B, C_out, H/stride, W/stride) (ceil, like a 3×3/pad-1 conv).

    Raises:
        ValueError: degree < 1 or reduce_factor not in [1, C_in].
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, reduce_factor: int = 4,
                 degree: int = 3, kernel_size: int = 3):
        super().__init__()
        if not 1 <= reduce_factor <= in_channels:
            raise ValueError(f"reduce_factor must be in [1, {in_channels}], got {reduce_factor}")
        mid = max(1, in_channels // reduce_factor)
        self.reduce = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.kan = ChebyKANDepthwiseConv2d(kernel_size, stride=stride, degree=degree)
        self.expand = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.expand(self.kan(self.reduce(x))))


class RKANStage(nn.Module):
    """Wrap any ResNet stage with an RKAN branch: ``forward(x) = stage(x) + RKANBlock(x)`` (addition, the RKAN
    paper's configuration).

    Args:
        stage: the stage module, (B, C_in, H, W) -> (B, C_out, H/stride, W/stride).
        in_ch, out_ch, stride: the stage's input channels, output channels and stride.
        reduce_factor, degree: see :class:`RKANBlock`.

    Raises:
        ValueError: from :class:`RKANBlock`.
    """

    def __init__(self, stage: nn.Module, in_ch: int, out_ch: int, stride: int, reduce_factor: int = 4,
                 degree: int = 3):
        super().__init__()
        self.stage = stage
        self.rkan = RKANBlock(in_ch, out_ch, stride, reduce_factor, degree)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(x) + self.rkan(x)


def rkan_hook(stages: tuple[int, ...], reduce_factor: int = 4, degree: int = 3):
    """Make the ``rkan`` hook of ResNet-style backbones: ``fn(stage_index, stage, in_ch, out_ch, stride)`` that
    wraps the stages whose **1-based** number (RKAN paper numbering, 1–4) is in ``stages`` with
    :class:`RKANStage` and returns the others unchanged.

    Raises:
        ValueError: a stage number outside 1–4.
    """
    stages = tuple(int(s) for s in stages)
    bad = [s for s in stages if not 1 <= s <= 4]
    if bad:
        raise ValueError(f"RKAN stage numbers are 1-4 (RKAN paper numbering), got {bad}")

    def hook(index: int, stage: nn.Module, in_ch: int, out_ch: int, stride: int) -> nn.Module:
        if index + 1 in stages:
            return RKANStage(stage, in_ch, out_ch, stride, reduce_factor, degree)
        return stage

    return hook
