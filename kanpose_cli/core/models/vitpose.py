"""ViTPose (Xu, Zhang, Zhang, Tao, NeurIPS 2022): plain ViT backbone + heatmap decoder, UDP σ = 2 targets,
JointsMSE, DARK-UDP decoding (spec §2). Variants: ViT-S/B at 256×192 with the classic or simple decoder.

Official (mmpose 0.x) and Hugging Face ``VitPoseForPoseEstimation`` checkpoints load through
:func:`kanpose_cli.core.models.convert.load_foreign_weights` (the specs carry
:func:`~kanpose_cli.core.models.convert.convert_vitpose`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from kanpose_cli.core.models.backbones.vit import ViT
from kanpose_cli.core.models.convert import convert_vitpose
from kanpose_cli.core.models.heads.heatmap import build_heatmap_head
from kanpose_cli.core.models.registry import ModelSpec, register_model


@dataclass(frozen=True)
class ViTPoseConfig:
    """ViTPose hyper-parameters (spec §2.1–2.2).

    Attributes:
        input_size: (H, W) pixels. num_keypoints: K.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: ViT settings (S: 384/12/12/4, B: 768/12/12/4).
        drop_path_rate: maximum stochastic depth (S 0.1, B 0.3).
        decoder: ``classic`` (2 deconvs, 64×48 maps) or ``simple`` (ReLU, bilinear ×4, 3×3 conv).
        layer_decay: layer-wise lr decay rate for training (S 0.8, B 0.75; used by the trainer).
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
    layer_decay: float = 0.8


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

VIT_S = dict(embed_dim=384, depth=12, num_heads=12, drop_path_rate=0.1, layer_decay=0.8)
VIT_B = dict(embed_dim=768, depth=12, num_heads=12, drop_path_rate=0.3, layer_decay=0.75)


def _register(name: str, cfg: ViTPoseConfig, description: str, paper: dict) -> None:
    register_model(ModelSpec(
        name=name, family="vitpose", build=ViTPose, config=cfg, codec=heatmap_codec(), loss=HEATMAP_LOSS,
        description=description, udp=True, paper=paper, convert_state_dict=convert_vitpose,
    ))


_register("vitpose-s", ViTPoseConfig(**VIT_S), "ViTPose-S, classic decoder, 256×192", {"ap": 73.8})
_register("vitpose-b", ViTPoseConfig(**VIT_B), "ViTPose-B, classic decoder, 256×192", {"ap": 75.8, "gflops": 17.1})
_register("vitpose-s-simple", ViTPoseConfig(**VIT_S, decoder="simple"), "ViTPose-S, simple decoder, 256×192",
          {"ap": 73.5})
_register("vitpose-b-simple", ViTPoseConfig(**VIT_B, decoder="simple"), "ViTPose-B, simple decoder, 256×192",
          {"ap": 75.5})
