"""KAN-FPN-Stem (H. Tang, "KAN-FPN-Stem ...", arXiv 2512.22228, 2025): ViTPose-S whose patch embedding is
replaced by a ResNet-50 + FPN stem; only P2 is used, smoothed by a bottleneck KAGN conv, reduced to the 16×12
token grid and fed to the ViT-S blocks; classic ViTPose decoder (spec §3).

Every stage of the paper's ablation table is a registered model:

====  ==========================================================  =========
name  what                                                        paper AP
====  ==========================================================  =========
s0    ViTPose-S baseline (patch embedding)                        72.5
s1    progressive CNN stem instead of the patch embedding         73.3
s2    FPN-Stem (ResNet-50 + FPN, P2, 3×3 smoothing)               74.0
s3    s2 + CBAM in every ResNet-50 bottleneck block               74.1
s4    lateral CBAM + KAGN smoothing at P2 (the paper's model)     74.5
s5    s2 + lateral CBAM                                           73.8
s6    KAGN-Fuse: s4 + KAGN after every top-down merge             74.3
====  ==========================================================  =========

Readings of points the paper leaves open (all config fields):

- P2 (64×48) -> 16×12 tokens (§3.5): ``reducer="proj_dwconv"`` (default): 1×1 conv 256→384 (the paper's
  projection) then a learned depthwise 4×4/stride-4 conv; ``proj_avgpool`` (1×1 then 4×4 average pooling) and
  ``patchify`` (one Conv 256→384, k 4, s 4) are the alternatives.
- CNN stem (stage 1): the paper only says "progressive CNN stem"; we follow Xiao et al. ("Early Convolutions
  Help Transformers See Better", 2021), which the paper cites: 4 × [3×3 stride-2 conv → BN → ReLU] with widths
  48/96/192/384, then a 1×1 conv to D (stride 16, 16×12 tokens).
- CBAM placement on laterals: after the 1×1 conv (spec §3.3 default; ``cbam_position="before"`` follows the
  paper's "pre-pended" literally, on C_i channels).
- KAGN-Fuse (stage 6): lateral CBAM kept, and a bottleneck KAGN conv follows each top-down merge (P4, P3) in
  addition to the P2 smoothing, so the fused stream itself is KAN-processed.
- KAGN: degree 3, InstanceNorm, reduction 4 (class defaults; spec §3.4).

ViTPose-S weights load into the ViT part and the decoder of every stage (patch embedding skipped for s1–s6),
see the ``vitpose-hybrid`` converter in :mod:`kanpose_cli.core.weights.convert`. ``kanpose train --init hub`` starts
every stage from ``vitpose-s``'s published weights (ViTPose+-S with its COCO expert merged); the new stem, CBAM
and KAGN parts stay at their initial values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from kanpose_cli.core.models.backbones.resnet50 import ResNet50Features
from kanpose_cli.core.models.backbones.vit import ViT, vit_grid
from kanpose_cli.core.models.heads.heatmap import build_heatmap_head
from kanpose_cli.core.models.necks.fpn import FPNP2
from kanpose_cli.core.models.registry import ModelSpec, register_model
from kanpose_cli.core.models.vitpose import HEATMAP_LOSS, heatmap_codec


@dataclass(frozen=True)
class KANFPNConfig:
    """KAN-FPN-Stem settings (defaults = the paper's final model, stage 4).

    Attributes:
        input_size: (H, W) pixels (H, W multiples of 16). num_keypoints: K.
        stem: ``patch`` (ViTPose patch embedding, stage 0), ``cnn`` (stage 1) or ``fpn`` (stages 2–6).
        cnn_stem_channels: widths of the CNN stem's stride-2 3×3 convs.
        fpn_width: F (256). lateral_cbam, cbam_position: CBAM on FPN laterals (``after`` | ``before`` the 1×1).
        backbone_cbam: CBAM in every ResNet-50 bottleneck block (stage 3).
        smooth: P2 smoothing ``conv`` (3×3) or ``kagn`` (bottleneck KAGN). fuse_kagn: KAGN after every merge.
        kagn_degree, kagn_reduction, kagn_norm (``instance`` | ``batch``): KAGN settings.
        reducer: ``proj_dwconv`` | ``proj_avgpool`` | ``patchify`` (P2 -> (B, D, H/16, W/16)).
        rkan_stages: ResNet-50 stages (1-based, 1–4) with an RKAN branch; rkan_reduce, rkan_degree: its settings.
        pretrained_backbone: load torchvision ImageNet weights ``backbone_weights`` into the ResNet-50 (needs
            network access or torchvision's cache; never used by the tests).
        embed_dim, depth, num_heads, mlp_ratio, drop_path_rate: ViT-S settings. decoder: head kind. (The layer-wise
            lr decay, 0.8 as ViTPose-S's, is a training setting: ``kanpose_cli/core/recipes/kanfpn.json``.)
    """

    input_size: tuple[int, int] = (256, 192)
    num_keypoints: int = 17
    stem: str = "fpn"
    cnn_stem_channels: tuple[int, ...] = (48, 96, 192, 384)
    fpn_width: int = 256
    lateral_cbam: bool = True
    cbam_position: str = "after"
    backbone_cbam: bool = False
    smooth: str = "kagn"
    fuse_kagn: bool = False
    kagn_degree: int = 3
    kagn_reduction: int = 4
    kagn_norm: str = "instance"
    reducer: str = "proj_dwconv"
    rkan_stages: tuple[int, ...] = ()
    rkan_reduce: int = 4
    rkan_degree: int = 3
    pretrained_backbone: bool = False
    backbone_weights: str = "IMAGENET1K_V1"
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.1
    decoder: str = "classic"


class CNNStem(nn.Module):
    """Progressive convolutional stem (Xiao et al. 2021): N × [Conv3×3 s2 (no bias) → BN → ReLU] → Conv1×1 (bias).

    (B, 3, H, W) -> (B, D, H/2ᴺ, W/2ᴺ) (N = 4: 256×192 -> 16×12).
    """

    def __init__(self, embed_dim: int, channels: tuple[int, ...] = (48, 96, 192, 384)):
        super().__init__()
        layers, c = [], 3
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True)]
            c = out
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c, embed_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.convs(x))


class P2Reducer(nn.Module):
    """P2 (B, F, h, w) -> ViT token map (B, D, h/4, w/4) (spec §3.5).

    ``proj_dwconv``: Conv1×1 F→D (bias) → depthwise Conv 4×4 stride 4 (bias). ``proj_avgpool``: Conv1×1 →
    AvgPool 4×4/4. ``patchify``: Conv F→D, k 4, s 4 (bias). Raises ValueError for another mode.
    """

    def __init__(self, in_channels: int, embed_dim: int, mode: str = "proj_dwconv"):
        super().__init__()
        if mode == "proj_dwconv":
            self.proj = nn.Conv2d(in_channels, embed_dim, 1)
            self.reduce = nn.Conv2d(embed_dim, embed_dim, 4, stride=4, groups=embed_dim)
        elif mode == "proj_avgpool":
            self.proj = nn.Conv2d(in_channels, embed_dim, 1)
            self.reduce = nn.AvgPool2d(4, stride=4)
        elif mode == "patchify":
            self.proj = nn.Identity()
            self.reduce = nn.Conv2d(in_channels, embed_dim, 4, stride=4)
        else:
            raise ValueError(f"reducer must be proj_dwconv | proj_avgpool | patchify, got {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce(self.proj(x))


class FPNStem(nn.Module):
    """ResNet-50 (C2–C5) → FPN (P2 only, KAN-FPN options) → :class:`P2Reducer`.

    (B, 3, H, W) -> (B, D, H/16, W/16) token map for the ViT blocks.
    """

    def __init__(self, cfg: KANFPNConfig):
        super().__init__()
        self.body = ResNet50Features(cfg.backbone_cbam, tuple(cfg.rkan_stages), cfg.rkan_reduce, cfg.rkan_degree,
                                     cfg.pretrained_backbone, cfg.backbone_weights)
        self.fpn = FPNP2(self.body.channels, cfg.fpn_width, cfg.lateral_cbam, cfg.cbam_position, cfg.smooth,
                         cfg.fuse_kagn, cfg.kagn_degree, cfg.kagn_reduction, cfg.kagn_norm)
        self.reducer = P2Reducer(cfg.fpn_width, cfg.embed_dim, cfg.reducer)

    def p2(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> smoothed P2 (B, F, H/4, W/4)."""
        return self.fpn(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reducer(self.p2(x))


class KANFPNPose(nn.Module):
    """KAN-FPN-Stem family network. (B, 3, H, W) normalised RGB -> (B, K, H/4, W/4) heatmaps.

    Submodules: ``stem`` (None for ``stem="patch"``, :class:`CNNStem` or :class:`FPNStem`), ``backbone`` (ViT;
    with its patch embedding only for ``stem="patch"``, which makes stage 0 identical to ViTPose-S), ``head``.

    Raises:
        ValueError: unknown ``stem`` or other settings; a stem whose output does not match the token grid.
    """

    def __init__(self, cfg: KANFPNConfig):
        super().__init__()
        if cfg.stem not in ("patch", "cnn", "fpn"):
            raise ValueError(f"stem must be patch | cnn | fpn, got {cfg.stem!r}")
        H, W = cfg.input_size
        if H % 16 or W % 16:
            raise ValueError(f"KAN-FPN input size must be a multiple of 16, got {H}x{W}")
        self.cfg = cfg
        if cfg.stem == "patch":
            self.stem = None
        elif cfg.stem == "cnn":
            self.stem = CNNStem(cfg.embed_dim, tuple(cfg.cnn_stem_channels))
        else:
            self.stem = FPNStem(cfg)
        self.backbone = ViT(tuple(cfg.input_size), cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_ratio, True,
                            cfg.drop_path_rate, patch_embed=cfg.stem == "patch")
        if cfg.stem != "patch" and vit_grid(tuple(cfg.input_size)) != (H // 16, W // 16):
            raise ValueError("token grid of the stem and the ViT position embedding differ")
        self.head = build_heatmap_head(cfg.decoder, cfg.embed_dim, cfg.num_keypoints)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> the (B, D, H/16, W/16) map handed to the ViT blocks (stem output)."""
        if self.stem is None:
            return self.backbone.patch_embed(x)
        return self.stem(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone(x) if self.stem is None else self.backbone(self.stem(x))
        return self.head(x)


STAGES: dict[int, tuple[dict, str, float]] = {
    0: (dict(stem="patch"), "ViTPose-S baseline (KAN-FPN-Stem ablation stage 0)", 72.5),
    1: (dict(stem="cnn"), "ViT-S with a progressive CNN stem (stage 1)", 73.3),
    2: (dict(stem="fpn", lateral_cbam=False, smooth="conv"), "FPN-Stem: ResNet-50 + FPN P2 (stage 2)", 74.0),
    3: (dict(stem="fpn", lateral_cbam=False, smooth="conv", backbone_cbam=True),
        "FPN-Stem + CBAM in every ResNet-50 block (stage 3)", 74.1),
    4: (dict(stem="fpn", lateral_cbam=True, smooth="kagn"),
        "KAN-FPN-Stem: lateral CBAM + KAGN smoothing at P2 (stage 4, the paper's model)", 74.5),
    5: (dict(stem="fpn", lateral_cbam=True, smooth="conv"), "FPN-Stem + lateral CBAM (stage 5)", 73.8),
    6: (dict(stem="fpn", lateral_cbam=True, smooth="kagn", fuse_kagn=True),
        "KAGN-Fuse: KAGN after every FPN fusion (stage 6)", 74.3),
}


def _register(name: str, cfg: KANFPNConfig, description: str, paper: dict) -> None:
    register_model(ModelSpec(
        name=name, family="kanfpn", build=KANFPNPose, config=cfg, codec=heatmap_codec(), loss=HEATMAP_LOSS,
        description=description, udp=True, paper=paper,
        converter="vitpose" if cfg.stem == "patch" else "vitpose-hybrid", init_from="vitpose-s",
    ))


_register("kanfpn", KANFPNConfig(**STAGES[4][0]), "KAN-FPN-Stem (= kanfpn-s4), 256×192", {"ap": STAGES[4][2]})
for _i, (_fields, _desc, _ap) in STAGES.items():
    _register(f"kanfpn-s{_i}", KANFPNConfig(**_fields), _desc + ", 256×192", {"ap": _ap})
# RKAN on the ResNet-50 stem: stages 3-4 and reduce factor 2, the RKAN paper's best placement (its Appendix E,
# "s = {3, 4}") and reduce factor.
_register("kanfpn-rkan", KANFPNConfig(**STAGES[4][0], rkan_stages=(3, 4), rkan_reduce=2),
          "KAN-FPN-Stem + RKAN on ResNet-50 stages 3-4 (not in the paper), 256×192", {})
