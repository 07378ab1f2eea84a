"""Targeted refinement (FlatPose paper §3.3, Eq. 11–12; spec §8.5): salience head → top-K tokens → cross-attention
block with the full token set as keys/values → scatter-overwrite into the sequence.

One :class:`TargetedRefinement` is one iteration with its own weights (spec §8.3: the parameter budget rules out a
weight-shared loop).

Salience gradient (spec §8.5 default): top-K is not differentiable, so the literal "overwrite with the refined
tokens" gives the salience head no gradient. ``gate="sigmoid"`` (default) writes back
``Q + σ(s_idx)·(Q' − Q)`` instead, which trains ``s``; ``gate="none"`` is the literal paper update ``Q'``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.layers import DropPath, Mlp

from kanpose_cli.core.models.layers.ica import ICABias, MultiHeadAttention

GATES = ("sigmoid", "none")


def resolve_topk(topk, num_tokens: int) -> int | None:
    """Number of refined tokens for a sequence of ``num_tokens``.

    Args:
        topk: a positive int K, or ``"full"`` / ``0`` / ``None`` (all tokens).

    Returns:
        None for "all tokens" (no selection), else ``min(K, num_tokens)``.

    Raises:
        ValueError: a negative int or any other string.
    """
    if topk is None or topk == 0 or (isinstance(topk, str) and topk.lower() == "full"):
        return None
    if isinstance(topk, str) or int(topk) < 0:
        raise ValueError(f"topk must be a positive int, 0, None or 'full', got {topk!r}")
    return min(int(topk), num_tokens)


class TargetedRefinement(nn.Module):
    """One select–attend–update iteration.

    ``Xn = LN(X)``; salience ``s = Linear(D→1)(Xn)`` (B, L); ``idx = top-K(s)``; ``Q = X[idx]``;
    ``Q' = Q + DropPath(CrossAttn(Xn[idx], Xn, Xn))``; ``Q' = Q' + DropPath(MLP(LN(Q')))``;
    ``X[idx] ← Q + σ(s_idx)·(Q' − Q)`` (``gate="sigmoid"``) or ``Q'`` (``gate="none"``).
    The salience head and the cross-attention read the same LayerNorm output (LN is per token, so
    ``LN(X)[idx] = LN(X[idx])``).

    Args:
        dim: D. num_heads: h. mlp_ratio: MLP hidden / D. drop_path: stochastic depth rate.
        topk: K (int), or ``"full"`` / 0 / None: refine every token with no gather/scatter (the paper's
            "K = Full"); K larger than the sequence is clipped to it.
        gate: ``"sigmoid"`` | ``"none"`` (see the module docstring).
        ica: also add an :class:`ICABias` to the cross-attention (spec default: no). ica_kwargs: its options.
        impl: attention implementation (``"sdpa"`` | ``"explicit"``).

    Forward: (B, L, D) -> (B, L, D). :meth:`forward` with ``return_index=True`` also returns the selected indices
    (B, K) int64 (None for "full").

    Raises:
        ValueError: bad ``topk`` or ``gate``.
    """

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: float = 4.0, drop_path: float = 0.0, topk=4,
                 gate: str = "sigmoid", ica: bool = False, ica_kwargs: dict | None = None, impl: str = "sdpa"):
        super().__init__()
        if gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
        resolve_topk(topk, 1)  # validate early
        self.topk, self.gate = topk, gate
        self.norm1 = nn.LayerNorm(dim)
        self.salience = nn.Linear(dim, 1)
        bias = ICABias(dim, num_heads, **(ica_kwargs or {})) if ica else None
        self.attn = MultiHeadAttention(dim, num_heads, ica=bias, impl=impl)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _update(self, q: torch.Tensor, qn: torch.Tensor, xn: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Refine queries ``q`` (B, K, D) (normalised ``qn``) against context ``xn``; gated by salience ``s`` (B, K)."""
        r = q + self.drop_path(self.attn(qn, xn))
        r = r + self.drop_path(self.mlp(self.norm2(r)))
        if self.gate == "sigmoid":
            return q + torch.sigmoid(s).unsqueeze(-1).to(r.dtype) * (r - q)
        return r

    def forward(self, x: torch.Tensor, return_index: bool = False):
        xn = self.norm1(x)
        s = self.salience(xn).squeeze(-1)  # (B, L)
        k = resolve_topk(self.topk, x.shape[1])
        if k is None:
            out = self._update(x, xn, xn, s)
            return (out, None) if return_index else out
        idx = s.topk(k, dim=1).indices  # (B, K)
        gidx = idx.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        new = self._update(x.gather(1, gidx), xn.gather(1, gidx), xn, s.gather(1, idx))
        out = x.scatter(1, gidx, new)
        return (out, idx) if return_index else out
