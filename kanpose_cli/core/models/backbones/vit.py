"""Plain ViT backbone of ViTPose (Xu et al., "ViTPose: Simple Vision Transformer Baselines for Human Pose
Estimation", NeurIPS 2022; layout of ViTAE-Transformer/ViTPose ``mmpose/models/backbones/vit.py``; spec §2.1).

Parameter names follow the official checkpoints (``patch_embed.proj``, ``pos_embed``, ``blocks.N.norm1``,
``blocks.N.attn.qkv``, ``blocks.N.attn.proj``, ``blocks.N.norm2``, ``blocks.N.mlp.fc1/fc2``, ``last_norm``), so
official ``backbone.*`` weights load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath


class PatchEmbed(nn.Module):
    """Conv2d(3 → D, kernel p, stride p, **padding 2**) then flatten (ViTPose: padding 4 + 2·(ratio//2 − 1), ratio 1).

    (B, 3, H, W) -> (B, D, H', W') with H' = (H + 4 − p)//p + 1 (256×192 -> 16×12).
    """

    def __init__(self, in_channels: int = 3, embed_dim: int = 384, patch_size: int = 16, padding: int = 2):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Attention(nn.Module):
    """Multi-head self-attention with fused ``qkv`` (q, k, v stacked in that order along the output features) and
    ``torch.nn.functional.scaled_dot_product_attention`` (scale head_dim^−½).

    (B, N, D) -> (B, N, D). Raises ValueError if D is not divisible by ``num_heads``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} not divisible by {num_heads} heads")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop, self.proj_drop = attn_drop, nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))


class Mlp(nn.Module):
    """Linear D→hidden, GELU (exact), Linear hidden→D. (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x += DropPath(Attn(LN(x)))``; ``x += DropPath(MLP(LN(x)))``; LN eps 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, attn_drop: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def vit_grid(input_size: tuple[int, int], patch_size: int = 16, padding: int = 2) -> tuple[int, int]:
    """Token grid ``(H', W')`` of the padded patch embedding for an input ``(H, W)`` (256×192 -> (16, 12))."""
    return tuple((s + 2 * padding - patch_size) // patch_size + 1 for s in input_size)


class ViT(nn.Module):
    """ViTPose's ViT backbone (ViT-S: D 384, 12 heads; ViT-B: D 768, 12 heads; depth 12, MLP ratio 4).

    Position embedding: learned (1, 1 + H'·W', D), trunc-normal std 0.02; the first slot (MAE's cls position) is
    added to every token together with its own slot (official ViTPose behaviour; no cls token). Blocks with drop
    path rising linearly from 0 to ``drop_path_rate``; final LayerNorm ``last_norm``. Init: Linear trunc-normal
    std 0.02, bias 0; LayerNorm 1/0.

    Args:
        input_size: (H, W) pixels of the input crop (grid from :func:`vit_grid`).
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias, drop_path_rate: the usual ViT settings.
        patch_embed: build the patch embedding (False: the backbone takes a (B, D, H', W') map from an external
            stem, e.g. the KAN-FPN stem, and has no ``patch_embed`` parameters).
        patch_size, patch_padding: 16 and 2 in ViTPose.

    Forward: (B, 3, H, W) images (or (B, D, H', W') maps without patch embed) -> (B, D, H', W') features.

    Raises:
        ValueError: a map of the wrong grid size reaches the position embedding.
    """

    def __init__(self, input_size: tuple[int, int] = (256, 192), embed_dim: int = 384, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path_rate: float = 0.1,
                 patch_embed: bool = True, patch_size: int = 16, patch_padding: int = 2):
        super().__init__()
        self.embed_dim = embed_dim
        self.grid = vit_grid(tuple(input_size), patch_size, patch_padding)
        self.patch_embed = PatchEmbed(3, embed_dim, patch_size, patch_padding) if patch_embed else None
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        dpr = [float(v) for v in torch.linspace(0, drop_path_rate, depth)]
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio, qkv_bias, dpr[i]) for i in range(depth)])
        self.last_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.patch_embed is not None:
            x = self.patch_embed(x)
        b, d, h, w = x.shape
        if (h, w) != self.grid or d != self.embed_dim:
            raise ValueError(f"ViT expects a (B, {self.embed_dim}, {self.grid[0]}, {self.grid[1]}) token map, "
                             f"got {tuple(x.shape)}")
        # contiguous tokens: a transposed view would make every LayerNorm and residual add copy (5 % slower)
        x = x.flatten(2).transpose(1, 2).contiguous() + (self.pos_embed[:, 1:] + self.pos_embed[:, :1])
        for blk in self.blocks:
            x = blk(x)
        x = self.last_norm(x)
        return x.transpose(1, 2).reshape(b, d, h, w)
