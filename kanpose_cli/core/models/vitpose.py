"""ViTPose (Xu, Zhang, Zhang, Tao, NeurIPS 2022): plain ViT backbone + heatmap decoder, UDP σ = 2 targets,
JointsMSE, DARK-UDP decoding (spec §2). Variants: ViT-S/B/L/H at 256×192 with the classic or simple decoder.

Official (mmpose 0.x) and Hugging Face ``VitPoseForPoseEstimation`` checkpoints load through the ``vitpose``
converter of :mod:`kanpose_cli.core.weights.convert`, which also turns ViTPose+ (ViTPose++, Xu et al., TPAMI 2023)
mixture-of-experts checkpoints into plain ViTPose by merging the shared and the COCO expert part of every MLP.

Published weights (``--weights hub``): the ViTPose authors' COCO checkpoints as converted to transformers by its
maintainers, on the Hugging Face Hub under ``usyd-community`` (Apache-2.0). The AP is the COCO val2017 AP the
authors report (ViTAE-Transformer/ViTPose README; person boxes of a 56 AP detector, flip test).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from kanpose_cli.core.models.backbones.vit import ViT
from kanpose_cli.core.models.heads.heatmap import build_heatmap_head
from kanpose_cli.core.models.registry import ModelSpec, PublishedWeights, register_model


@dataclass(frozen=True)
class ViTPoseConfig:
    """ViTPose hyper-parameters (spec §2.1–2.2).

    Attributes:
        input_size: (H, W) pixels. num_keypoints: K.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: ViT settings (S: 384/12/12/4, B: 768/12/12/4,
            L: 1024/24/16/4, H: 1280/32/16/4).
        drop_path_rate: maximum stochastic depth (S 0.1, B 0.3, L 0.5, H 0.55).
        decoder: ``classic`` (2 deconvs, 64×48 maps) or ``simple`` (ReLU, bilinear ×4, 3×3 conv).

    The layer-wise lr decay of the official configs (S 0.8, B 0.75, L 0.8, H 0.85) is a training setting: the
    ``variants`` of ``kanpose_cli/core/recipes/vitpose.json``.
    """

    input_size: tuple[int, int] = (256, 192)
    num_keypoints: int = 17
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.1
    decoder: str = "classic"


class ViTPose(nn.Module):
    """ViTPose network. (B, 3, H, W) normalised RGB -> (B, K, H/4, W/4) heatmaps (64×48 for 256×192).

    Submodules ``backbone`` (:class:`ViT`) and ``head`` (classic or simple decoder); official keys map 1:1.
    """

    def __init__(self, cfg: ViTPoseConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = ViT(tuple(cfg.input_size), cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_ratio,
                            cfg.qkv_bias, cfg.drop_path_rate)
        self.head = build_heatmap_head(cfg.decoder, cfg.embed_dim, cfg.num_keypoints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def heatmap_codec(sigma: float = 2.0) -> dict:
    """Codec settings of the heatmap families: UDP σ = 2 targets, DARK-UDP decode with an 11×11 blur."""
    return {"type": "heatmap", "sigma": sigma, "blur_kernel": 11, "dark": True}


HEATMAP_LOSS = {"type": "joints_mse", "use_target_weight": True}

VIT_S = dict(embed_dim=384, depth=12, num_heads=12, drop_path_rate=0.1)
VIT_B = dict(embed_dim=768, depth=12, num_heads=12, drop_path_rate=0.3)
VIT_L = dict(embed_dim=1024, depth=24, num_heads=16, drop_path_rate=0.5)
VIT_H = dict(embed_dim=1280, depth=32, num_heads=16, drop_path_rate=0.55)

_HUB = "usyd-community"
_PLUS_DATA = "COCO+AIC+MPII+AP-10K+APT-36K+COCO-WholeBody"
_PLUS_NOTE = "ViTPose+ mixture of experts; shared + COCO expert merged into one MLP"


def _plus(size: str, ap: float) -> PublishedWeights:
    return PublishedWeights("plus", f"{_HUB}/vitpose-plus-{size}", ap=ap, trained_on=_PLUS_DATA, note=_PLUS_NOTE)


def _register(name: str, cfg: ViTPoseConfig, description: str, paper: dict,
              published: tuple[PublishedWeights, ...] = ()) -> None:
    register_model(ModelSpec(
        name=name, family="vitpose", build=ViTPose, config=cfg, codec=heatmap_codec(), loss=HEATMAP_LOSS,
        description=description, udp=True, paper=paper, converter="vitpose", published=published,
    ))


_register("vitpose-s", ViTPoseConfig(**VIT_S), "ViTPose-S, classic decoder, 256×192", {"ap": 73.8},
          (_plus("small", 75.8),))
_register("vitpose-b", ViTPoseConfig(**VIT_B), "ViTPose-B, classic decoder, 256×192", {"ap": 75.8, "gflops": 17.1},
          (PublishedWeights("coco", f"{_HUB}/vitpose-base", ap=75.8),
           _plus("base", 77.0),
           PublishedWeights("coco-aic-mpii", f"{_HUB}/vitpose-base-coco-aic-mpii", ap=77.1,
                            trained_on="COCO+AIC+MPII")))
_register("vitpose-s-simple", ViTPoseConfig(**VIT_S, decoder="simple"), "ViTPose-S, simple decoder, 256×192",
          {"ap": 73.5})
_register("vitpose-b-simple", ViTPoseConfig(**VIT_B, decoder="simple"), "ViTPose-B, simple decoder, 256×192",
          {"ap": 75.5}, (PublishedWeights("coco", f"{_HUB}/vitpose-base-simple", ap=75.5),))
_register("vitpose-l", ViTPoseConfig(**VIT_L), "ViTPose-L, classic decoder, 256×192", {"ap": 78.3},
          (_plus("large", 78.6),))
_register("vitpose-h", ViTPoseConfig(**VIT_H), "ViTPose-H, classic decoder, 256×192", {"ap": 79.1},
          (_plus("huge", 79.4),))
