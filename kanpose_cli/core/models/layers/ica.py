"""Implicit Coordinate Attention (ICA) and the biased multi-head attention it plugs into (FlatPose, spec §8.4;
paper §3.2, Eq. 3–10, Appendix D Table 6 and Algorithm 1).

ICA adds a per-head bias ``B`` (B, h, Lq, Lk) to the attention logits ``QKᵀ/√d``. The bias is a learned function of
the *relative semantic distance* of two tokens:

1. semantic coordinates (Eq. 5 / Alg. 1 lines 9–12): ``c_x = tanh(γ·⟨x W_qx, x W_kx⟩)``, same for y, with four
   D×D' projections (D' = D/4) and γ = D'^-½ (Table 6: fixed 0.125 for D' = 64; a learnable γ is an option);
2. ``p = |c_i − c_j| − 1 ∈ [−1, 1]²`` (Eq. 6–7), x in the grid's width direction, y in its height direction;
3. bilinear ``grid_sample`` of a learnable grid ``G`` (D_bias × S × S = 64×16×16) at ``p`` (Eq. 8);
4. ``B = MLP([g; p])`` with MLP 66 → 128 → GELU → heads (Eq. 9).

:func:`biased_attention` runs ``softmax(QKᵀ/√d + B)·V`` either through
``torch.nn.functional.scaled_dot_product_attention`` with ``B`` as an additive float ``attn_mask`` (fast path) or
as explicit matmuls (reference path); both are equal to float32 round-off (tested to 1e-5).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, Mlp

ATTN_IMPLS = ("sdpa", "explicit")


def biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None,
                     impl: str = "sdpa") -> torch.Tensor:
    """Scaled dot-product attention with an optional additive logit bias.

    Args:
        q: (B, h, Lq, d). k, v: (B, h, Lk, d).
        bias: None or a float tensor broadcastable to (B, h, Lq, Lk), added to ``QKᵀ/√d`` before the softmax.
        impl: ``"sdpa"`` (``F.scaled_dot_product_attention`` with ``attn_mask=bias``) or ``"explicit"``
            (``softmax(QKᵀ/√d + bias) @ V`` written out).

    Returns:
        (B, h, Lq, d).

    Raises:
        ValueError: unknown ``impl``.
    """
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    if impl != "explicit":
        raise ValueError(f"attention impl must be one of {ATTN_IMPLS}, got {impl!r}")
    logits = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if bias is not None:
        logits = logits + bias
    return logits.softmax(dim=-1) @ v


class SemanticCoordinates(nn.Module):
    """Content-dependent 2-D coordinates of tokens (paper Eq. 3–5, Algorithm 1 lines 9–12).

    ``c_a = tanh(γ · Σ_d (x W_{q,a})_d (x W_{k,a})_d)`` for a ∈ {x, y}; the four D×D' projections are one
    bias-free ``Linear(D → 4·D')`` (same parameters as the paper's four matrices).

    Args:
        dim: D. coord_dim: D' (D/4 = 64 in the paper). gamma: scale (None: D'^-½, Table 6).
        learnable_gamma: make γ a parameter (the paper's §3.2.1 text calls it learnable, Table 6 fixed; default
            fixed).

    Forward: (B, L, D) -> (B, L, 2) coordinates (x, y) in [−1, 1].
    """

    def __init__(self, dim: int, coord_dim: int = 64, gamma: float | None = None, learnable_gamma: bool = False):
        super().__init__()
        self.coord_dim = coord_dim
        self.proj = nn.Linear(dim, 4 * coord_dim, bias=False)
        g = torch.tensor(float(gamma if gamma is not None else coord_dim ** -0.5))
        if learnable_gamma:
            self.gamma = nn.Parameter(g)
        else:
            self.register_buffer("gamma", g, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qx, kx, qy, ky = self.proj(x).split(self.coord_dim, dim=-1)
        score = torch.stack([(qx * kx).sum(-1), (qy * ky).sum(-1)], dim=-1)
        return torch.tanh(self.gamma * score)


class ICABias(nn.Module):
    """The ICA attention bias (paper Eq. 6–9; spec §8.4).

    Args:
        dim: token width D. num_heads: heads h (one bias map each).
        coord_dim: D' of :class:`SemanticCoordinates`. gamma, learnable_gamma: see there.
        grid_size: S (16). grid_dim: D_bias (64). mlp_hidden: 128.
        grid_init: ``"zeros"`` (spec default: the initial bias depends on p only) or ``"trunc_normal"`` (std 0.02).
        align_corners: ``grid_sample`` convention (False; padding mode ``border``).

    Forward:
        ``xq`` (B, Lq, D), ``xk`` (B, Lk, D) (normalised tokens; pass the same tensor twice for self-attention)
        -> bias (B, h, Lq, Lk) float, to be added to attention logits.

    Raises:
        ValueError: unknown ``grid_init``.
    """

    def __init__(self, dim: int, num_heads: int, coord_dim: int = 64, gamma: float | None = None,
                 learnable_gamma: bool = False, grid_size: int = 16, grid_dim: int = 64, mlp_hidden: int = 128,
                 grid_init: str = "zeros", align_corners: bool = False):
        super().__init__()
        self.coords = SemanticCoordinates(dim, coord_dim, gamma, learnable_gamma)
        self.grid = nn.Parameter(torch.zeros(1, grid_dim, grid_size, grid_size))
        if grid_init == "trunc_normal":
            nn.init.trunc_normal_(self.grid, std=0.02)
        elif grid_init != "zeros":
            raise ValueError(f"grid_init must be zeros|trunc_normal, got {grid_init!r}")
        self.align_corners = bool(align_corners)
        self.mlp = nn.Sequential(nn.Linear(grid_dim + 2, mlp_hidden), nn.GELU(), nn.Linear(mlp_hidden, num_heads))

    def forward(self, xq: torch.Tensor, xk: torch.Tensor | None = None) -> torch.Tensor:
        cq = self.coords(xq)
        ck = cq if xk is None or xk is xq else self.coords(xk)
        p = (cq.unsqueeze(2) - ck.unsqueeze(1)).abs() - 1.0  # (B, Lq, Lk, 2), (x, y) in [-1, 1]
        grid = self.grid.expand(p.shape[0], -1, -1, -1).to(p.dtype)
        g = F.grid_sample(grid, p, mode="bilinear", padding_mode="border", align_corners=self.align_corners)
        feats = torch.cat([g.permute(0, 2, 3, 1), p], dim=-1)  # (B, Lq, Lk, D_bias + 2)
        return self.mlp(feats).permute(0, 3, 1, 2)  # (B, h, Lq, Lk)


class MultiHeadAttention(nn.Module):
    """Multi-head (self- or cross-) attention with an optional :class:`ICABias`.

    Args:
        dim: D. num_heads: h (D divisible by h). qkv_bias: biases on the projections.
        ica: an :class:`ICABias` or None (standard attention). impl: ``"sdpa"`` | ``"explicit"``.

    Forward:
        ``xq`` (B, Lq, D) normalised queries, ``xkv`` (B, Lk, D) normalised keys/values (None: self-attention)
        -> (B, Lq, D).
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, ica: ICABias | None = None,
                 impl: str = "sdpa"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by num_heads {num_heads}")
        if impl not in ATTN_IMPLS:
            raise ValueError(f"attention impl must be one of {ATTN_IMPLS}, got {impl!r}")
        self.num_heads, self.impl = num_heads, impl
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.ica = ica

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self, xq: torch.Tensor, xkv: torch.Tensor | None = None) -> torch.Tensor:
        src = xq if xkv is None else xkv
        k, v = self.kv(src).chunk(2, dim=-1)
        bias = self.ica(xq, src) if self.ica is not None else None
        out = biased_attention(self._heads(self.q(xq)), self._heads(k), self._heads(v), bias, self.impl)
        b, _, n, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class ICABlock(nn.Module):
    """Pre-norm transformer encoder block with ICA self-attention (a "coarse" block of FlatPose, spec §8.4):
    ``X ← X + DropPath(MHSA_ICA(LN(X)))``; ``X ← X + DropPath(MLP(LN(X)))`` (GELU, hidden ``mlp_ratio·D``).

    Args:
        dim, num_heads, mlp_ratio, drop_path: the usual. ica: use the ICA bias (False: standard attention, the
            paper's Table 5 row 6). ica_kwargs: forwarded to :class:`ICABias`. impl: attention implementation.

    Forward: (B, L, D) -> (B, L, D).
    """

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 ica: bool = True, ica_kwargs: dict | None = None, impl: str = "sdpa"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        bias = ICABias(dim, num_heads, **(ica_kwargs or {})) if ica else None
        self.attn = MultiHeadAttention(dim, num_heads, ica=bias, impl=impl)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
