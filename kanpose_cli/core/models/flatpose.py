"""FlatPose ("FlatPose: An Upsampling-Free Transformer for Human Pose Estimation", anonymous ICLR submission;
spec §8; paper ``shared/papers/flatpose.txt``).

Pipeline: backbone stride-32 map only (timm ConvNeXtV2-N/T, or torchvision ResNet-50) → Conv3×3 to D = 256 →
L = h·w tokens + 2-D sin-cos position encoding (Eq. 1–2) → N coarse pre-norm transformer blocks with Implicit
Coordinate Attention (§3.2, :mod:`~kanpose_cli.core.models.layers.ica`) → M targeted-refinement iterations (§3.3,
:mod:`~kanpose_cli.core.models.layers.refine`) → LayerNorm → tokens back to (B, D, h, w) → CLS head with two linear
SimCC classifiers (:class:`~kanpose_cli.core.models.heads.flatpose.FlatSimCCHead`) →
``(x_logits (B, K, k·W), y_logits (B, K, k·H))``.

Every UNSPEC point of the paper is a field of :class:`FlatPoseConfig` (defaults from spec §8, reasons in
``docs/flatpose.md``); the Table 5 ablations are switches: ``ica`` (row 6), ``coarse_blocks``/``refine_blocks``
(rows 7–9), ``topk`` 2/4/8/"full" (rows 10–13), ``head="regression"`` (row 3, pair with the ``regression`` codec
and the ``l1`` loss), ``upsample_layers`` (row 4), ``backbone="resnet50"`` (row 2).

Complexity convention (``kanpose_cli.core.models.complexity``): convolutions and matrix products as counted by
``FlopCounterMode`` (FLOPs / 2); each ``scaled_dot_product_attention`` call (float ``attn_mask`` = ICA bias) by
kanpose's own rule, 2·Lq·Lk·d MACs per head (QKᵀ and A·V), whatever kernel torch runs, so the figure does not
depend on the torch version; this equals the count of the explicit ``softmax(QKᵀ/√d + B)V`` path (checked by a
test). Not counted, as in fvcore/thop: element-wise work (softmax, bias addition, tanh, LayerNorm, GELU) and the
bilinear ``grid_sample`` of ICA (≈ 4 multiply-adds per grid channel and token pair); the ICA projections and its
pair MLP are counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from kanpose_cli.core.models.backbones.stride32 import build_stride32_backbone
from kanpose_cli.core.models.heads.flatpose import FlatRegressionHead, FlatSimCCHead
from kanpose_cli.core.models.layers.ica import ATTN_IMPLS, ICABlock
from kanpose_cli.core.models.layers.refine import TargetedRefinement, resolve_topk
from kanpose_cli.core.models.registry import ModelSpec, register_model


@dataclass(frozen=True)
class FlatPoseConfig:
    """FlatPose hyper-parameters. Defaults = FlatPose-B at 256×192 (paper Table 1; spec §8).

    Attributes:
        input_size: (H, W) pixels. num_keypoints: K joints.
        backbone: timm name (``convnextv2_nano`` / ``convnextv2_tiny``, optionally ``.tag``) or torchvision name
            (``resnet50``). backbone_library: ``timm`` | ``torchvision``. pretrained_backbone: ImageNet weights
            from the library (needs the network). backbone_drop_path: stochastic depth in the backbone (UNSPEC).
        embed_dim: D (256). num_heads: 8. mlp_ratio: 4 (spec §8.3).
        coarse_blocks: N ICA blocks. refine_blocks: M refinement iterations (own weights each).
        topk: tokens refined per iteration: an int K, or ``"full"`` / 0 / None for every token.
        drop_path: stochastic depth of the transformer blocks, linear from 0 to this over coarse + refine.
        ica: ICA bias in the coarse blocks (False: standard attention, Table 5 row 6).
        ica_coord_dim: D' (64). ica_gamma: γ (None: D'^-½). ica_learnable_gamma: γ as a parameter.
        ica_grid_size: S (16). ica_grid_dim: D_bias (64). ica_mlp_hidden: 128.
        ica_grid_init: ``zeros`` | ``trunc_normal``. ica_align_corners: ``grid_sample`` convention.
        refine_ica: ICA bias in the refinement cross-attention too (spec default: no).
        salience_gate: ``sigmoid`` (X[idx] ← Q + σ(s)(Q' − Q), trains the salience head) | ``none`` (literal Q').
        attn_impl: ``sdpa`` (fused, bias as float attn_mask) | ``explicit`` (softmax(QKᵀ/√d + B)V).
        head: ``simcc`` (CLS head) | ``regression`` (Table 5 row 3; needs codec type ``regression``, loss ``l1``).
        head_t: per-joint channels t of the head's 1×1 conv; None (default) picks
            ``t = max(1, round(head_features / (h·w)))`` for the head's input map h×w: 8 at 8×6 tokens (spec §8.6),
            4 at 12×9 (384×288), 1 after the ablation's upsampling. head_features: the per-joint width aimed at.
        reg_hidden: regression MLP width.
        upsample_layers: deconvs (4×4, stride 2, BN, ReLU; SimpleBaseline style) for the "+ upsampling layers"
            ablation (Table 5 row 4); 0 = upsampling-free (the paper's model).
        upsample_position: ``after`` the transformer (the paper's wording) | ``before`` tokenising.
        upsample_channels: deconv width.
        split_ratio: SimCC k (bins per pixel).
    """

    input_size: tuple[int, int] = (256, 192)
    num_keypoints: int = 17
    backbone: str = "convnextv2_nano"
    backbone_library: str = "timm"
    pretrained_backbone: bool = False
    backbone_drop_path: float = 0.1
    embed_dim: int = 256
    num_heads: int = 8
    mlp_ratio: float = 4.0
    coarse_blocks: int = 4
    refine_blocks: int = 2
    topk: int | str | None = 4
    drop_path: float = 0.1
    ica: bool = True
    ica_coord_dim: int = 64
    ica_gamma: float | None = None
    ica_learnable_gamma: bool = False
    ica_grid_size: int = 16
    ica_grid_dim: int = 64
    ica_mlp_hidden: int = 128
    ica_grid_init: str = "zeros"
    ica_align_corners: bool = False
    refine_ica: bool = False
    salience_gate: str = "sigmoid"
    attn_impl: str = "sdpa"
    head: str = "simcc"
    head_t: int | None = None
    head_features: int = 384
    reg_hidden: int = 512
    upsample_layers: int = 0
    upsample_position: str = "after"
    upsample_channels: int = 256
    split_ratio: float = 2.0


def sincos_pos_embed_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position encoding (MAE/ViT-style; paper Eq. 2).

    Half of the channels encode the column index x, half the row index y; each half is ``[sin(pos·ω), cos(pos·ω)]``
    with ``ω_i = 10000^(−i/(dim/4))``, i < dim/4. Positions are token indices (0 … w−1, 0 … h−1).

    Returns:
        (h·w, dim) float32, row-major token order (matching ``flatten(2)`` of a (B, D, h, w) map).

    Raises:
        ValueError: ``dim`` not divisible by 4.
    """
    if dim % 4:
        raise ValueError(f"position-encoding dim must be divisible by 4, got {dim}")
    q = dim // 4
    omega = 1.0 / (10000.0 ** (torch.arange(q, dtype=torch.float64) / q))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")

    def enc(pos: torch.Tensor) -> torch.Tensor:
        a = pos.reshape(-1, 1) * omega[None]
        return torch.cat([a.sin(), a.cos()], dim=1)

    return torch.cat([enc(xs), enc(ys)], dim=1).float()


def deconv_stack(in_channels: int, channels: int, layers: int) -> nn.Sequential:
    """``layers`` × [ConvTranspose2d(4×4, stride 2, pad 1, no bias) → BN → ReLU]: (B, C, h, w) -> (B, channels,
    h·2^layers, w·2^layers) (SimpleBaseline's upsampling, used only by the Table 5 row 4 ablation)."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.ConvTranspose2d(in_channels if i == 0 else channels, channels, 4, 2, 1, bias=False),
                 nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*mods)


class FlatPose(nn.Module):
    """The FlatPose network.

    Forward: (B, 3, H, W) ImageNet-normalised RGB -> ``(x_logits (B, K, k·W), y_logits (B, K, k·H))`` for
    ``head="simcc"``, or (B, K, 2) normalised (x/W, y/H) in (0, 1) for ``head="regression"``.

    Raises:
        ValueError: inconsistent config (unknown head/attn_impl/upsample_position, bad topk, D not divisible
            by heads or 4).
    """

    def __init__(self, cfg: FlatPoseConfig):
        super().__init__()
        if cfg.head not in ("simcc", "regression"):
            raise ValueError(f"head must be simcc|regression, got {cfg.head!r}")
        if cfg.attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {cfg.attn_impl!r}")
        if cfg.upsample_position not in ("after", "before"):
            raise ValueError(f"upsample_position must be after|before, got {cfg.upsample_position!r}")
        self.cfg = cfg
        H, W = cfg.input_size
        D = cfg.embed_dim
        self.backbone = build_stride32_backbone(cfg.backbone, cfg.backbone_library, cfg.pretrained_backbone,
                                                cfg.backbone_drop_path)
        h, w = math.ceil(H / self.backbone.stride), math.ceil(W / self.backbone.stride)
        c_in = self.backbone.out_channels
        n_up = int(cfg.upsample_layers)
        self.up_before = deconv_stack(c_in, cfg.upsample_channels, n_up) if n_up and cfg.upsample_position == "before" \
            else nn.Identity()
        if n_up and cfg.upsample_position == "before":
            c_in, h, w = cfg.upsample_channels, h << n_up, w << n_up
        self.token_hw = (h, w)
        self.proj = nn.Conv2d(c_in, D, 3, padding=1)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(h, w, D), persistent=False)

        ica_kwargs = dict(coord_dim=cfg.ica_coord_dim, gamma=cfg.ica_gamma, learnable_gamma=cfg.ica_learnable_gamma,
                          grid_size=cfg.ica_grid_size, grid_dim=cfg.ica_grid_dim, mlp_hidden=cfg.ica_mlp_hidden,
                          grid_init=cfg.ica_grid_init, align_corners=cfg.ica_align_corners)
        n_blocks = cfg.coarse_blocks + cfg.refine_blocks
        dpr = [cfg.drop_path * i / max(1, n_blocks - 1) for i in range(n_blocks)]
        self.coarse = nn.ModuleList(
            ICABlock(D, cfg.num_heads, cfg.mlp_ratio, dpr[i], cfg.ica, ica_kwargs, cfg.attn_impl)
            for i in range(cfg.coarse_blocks))
        self.refine = nn.ModuleList(
            TargetedRefinement(D, cfg.num_heads, cfg.mlp_ratio, dpr[cfg.coarse_blocks + i], cfg.topk,
                               cfg.salience_gate, cfg.refine_ica, ica_kwargs, cfg.attn_impl)
            for i in range(cfg.refine_blocks))
        self.norm = nn.LayerNorm(D)

        head_in = D
        if n_up and cfg.upsample_position == "after":
            self.up_after = deconv_stack(D, cfg.upsample_channels, n_up)
            head_in, h, w = cfg.upsample_channels, h << n_up, w << n_up
        else:
            self.up_after = nn.Identity()
        t = cfg.head_t if cfg.head_t is not None else max(1, round(cfg.head_features / (h * w)))
        self.head_t = int(t)
        if cfg.head == "simcc":
            bins = (int(round(W * cfg.split_ratio)), int(round(H * cfg.split_ratio)))
            self.head = FlatSimCCHead(head_in, (h, w), cfg.num_keypoints, bins, self.head_t)
        else:
            self.head = FlatRegressionHead(head_in, (h, w), cfg.num_keypoints, self.head_t, cfg.reg_hidden)

    def _pos(self, h: int, w: int, ref: torch.Tensor) -> torch.Tensor:
        if (h, w) == self.token_hw:
            return self.pos_embed.to(ref.dtype)
        return sincos_pos_embed_2d(h, w, ref.shape[-1]).to(device=ref.device, dtype=ref.dtype)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Backbone → tokens → coarse ICA blocks → refinement → final LayerNorm.

        Returns:
            ``(tokens (B, L, D), (h, w))`` with L = h·w.
        """
        f = self.proj(self.up_before(self.backbone(x)))
        b, d, h, w = f.shape
        t = f.flatten(2).transpose(1, 2) + self._pos(h, w, f)
        for blk in self.coarse:
            t = blk(t)
        for blk in self.refine:
            t = blk(t)
        return self.norm(t), (h, w)

    def forward(self, x: torch.Tensor):
        t, (h, w) = self.forward_tokens(x)
        m = t.transpose(1, 2).reshape(t.shape[0], -1, h, w)
        return self.head(self.up_after(m))


# ----------------------------------------------------------------------------------------------------- registry
def simcc_sigma(input_size: tuple[int, int]) -> tuple[float, float]:
    """RTMPose's per-axis Gaussian σ in bins: ``σ_axis = 4.9·√(L_axis / 192)`` (spec §5.1), rounded to 2 decimals:
    (4.9, 5.66) at 256×192, (6.0, 6.93) at 384×288."""
    H, W = input_size
    return round(4.9 * math.sqrt(W / 192.0), 2), round(4.9 * math.sqrt(H / 192.0), 2)


def flatpose_codec(cfg: FlatPoseConfig) -> dict:
    """Codec settings for a config: SimCC (spec §8.6, RTMPose defaults) or, for ``head="regression"``, the
    regression codec."""
    if cfg.head == "regression":
        return {"type": "regression"}
    return {"type": "simcc", "split_ratio": cfg.split_ratio, "label": "gaussian",
            "sigma": simcc_sigma(cfg.input_size), "normalize": False, "beta": 10.0}


def flatpose_loss(cfg: FlatPoseConfig) -> dict:
    """Loss settings: KLDiscretLoss β = 10 with label softmax (RTMPose), or L1 for the regression head."""
    if cfg.head == "regression":
        return {"type": "l1", "use_target_weight": True}
    return {"type": "kl_discret", "beta": 10.0, "label_softmax": True, "label_beta": 10.0, "use_target_weight": True}


def _register(name: str, cfg: FlatPoseConfig, description: str, paper: dict | None = None) -> None:
    resolve_topk(cfg.topk, 1)
    register_model(ModelSpec(
        name=name, family="flatpose", build=FlatPose, config=cfg, codec=flatpose_codec(cfg),
        loss=flatpose_loss(cfg), codec_for=flatpose_codec, loss_for=flatpose_loss, description=description, udp=True,
        paper=paper or {},
    ))


_B = FlatPoseConfig()
_L = FlatPoseConfig(backbone="convnextv2_tiny", coarse_blocks=6, refine_blocks=3)

_register("flatpose-b", _B, "FlatPose-B: ConvNeXtV2-Nano, 4 ICA + 2 refine blocks, K 4, 256×192",
          {"ap": 75.4, "params_m": 21.6, "gflops": 2.8})
_register("flatpose-l", _L, "FlatPose-L: ConvNeXtV2-Tiny, 6 ICA + 3 refine blocks, K 4, 256×192",
          {"ap": 77.4, "params_m": 37.3, "gflops": 4.9})
_register("flatpose-b-384x288", FlatPoseConfig(input_size=(384, 288), topk=6),
          "FlatPose-B at 384×288 (not in the paper; K 6 as the paper's L-384)")
_register("flatpose-l-384x288", FlatPoseConfig(input_size=(384, 288), backbone="convnextv2_tiny", coarse_blocks=6,
                                               refine_blocks=3, topk=6),
          "FlatPose-L: ConvNeXtV2-Tiny, 6 ICA + 3 refine blocks, K 6, 384×288",
          {"ap": 78.2, "params_m": 37.4, "gflops": 11.5})
_register("flatpose-r50", FlatPoseConfig(backbone="resnet50", backbone_library="torchvision", backbone_drop_path=0.0),
          "FlatPose head on torchvision ResNet-50, 4 ICA + 2 refine, 256×192 (paper Table 5 row 2)",
          {"ap": 73.9, "params_m": 33.4, "gflops": 4.6})
# Table 5 ablations the paper names (FlatPose-B base); depth and K ablations are plain overrides.
_register("flatpose-b-noica", FlatPoseConfig(ica=False), "FlatPose-B w/o ICA (standard attention; Table 5 row 6)",
          {"ap": 74.1, "params_m": 21.3, "gflops": 2.7})
_register("flatpose-b-reg", FlatPoseConfig(head="regression"),
          "FlatPose-B w/ regression head and L1 loss (Table 5 row 3)", {"ap": 74.3, "params_m": 21.9, "gflops": 2.9})
_register("flatpose-b-upsample", FlatPoseConfig(upsample_layers=3),
          "FlatPose-B + 3 deconv upsampling layers after the transformer (Table 5 row 4)",
          {"ap": 75.5, "params_m": 24.8, "gflops": 3.9})
