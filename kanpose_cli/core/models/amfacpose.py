"""AMFACPose (Zakir, Salman, Benitez-Garcia, Takahashi, "AMFACPose: ...", Electronics 2025, 14(11), 2107).

ResNet-34/18 with a CoordConv stem, depthwise-separable BasicBlocks, SE and SCRM -> AFPN with Dual-Gate Context
Blocks -> SimCC head with Mish MLPs; KL-divergence loss with label smoothing and temperature (spec §7).

Every point the paper leaves open is a field of :class:`AMFACPoseConfig` with the spec's default; the five
ablation switches of the paper's Table 6 are ``afpn``, ``dgcb``, ``scrm``, ``se``, ``coordconv``.

Reading chosen for the stem (documented deviation from spec §7.2's single stem conv): the paper replaces the 7×7
conv "with a series of 3×3 CoordConv2d layers, each followed by BN and Mish"; a three-conv series 32-32-64 (the
first at stride 2, no max-pool) lands on the paper's 3.8 M / 5.2 GMACs (R34 384×288) and 2.4 M / 1.9 GMACs
(R18 256×256) within ±5 %, which the single-conv reading (4.49 / 1.53 GMACs) does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from kanpose_cli.core.models.backbones.resnet_dsc import DSCResNet
from kanpose_cli.core.models.heads.simcc import SimCCMLPHead
from kanpose_cli.core.models.layers.kan import rkan_hook
from kanpose_cli.core.models.necks.afpn import AFPN
from kanpose_cli.core.models.registry import ModelSpec, register_model


@dataclass(frozen=True)
class AMFACPoseConfig:
    """AMFACPose hyper-parameters (all UNSPEC items of spec §7.2 are fields).

    Attributes:
        input_size: (H, W) pixels. depth: ResNet 18 or 34. num_keypoints: K.
        stem_channels: the stem's 3×3 CoordConv series (first one stride 2).
        maxpool: ResNet max-pool after the stem (off: stages at strides 2/4/8/16).
        block_activation: ``relu`` | ``mish`` inside the DSC blocks.
        afpn: AFPN neck (off: the head reads the last stage directly). afpn_levels: backbone stage indices fused
            (0-based; default C3–C5 = 1, 2, 3). afpn_width: F.
        dgcb, dgcb_mode: Dual-Gate Context Blocks and their reading (``dual`` | ``se``).
        scrm: ``last`` | ``all`` | ``none`` (the switch for Table 6 is ``none`` vs ``last``). se: SE blocks.
        coordconv: CoordConv in the stem. dsc: depthwise-separable block convs.
        head_embed_dim: d. head_hidden: MLP width. split_ratio: SimCC k.
        simcc_label: SimCC training labels, ``smoothed_onehot`` (spec §7.2 default: one-hot + label smoothing 0.1)
            or ``gaussian`` (the spec's alternative, RTMPose's choice). simcc_sigma: Gaussian σ in bins ``(σx, σy)``.
        rkan_stages: ResNet stages (1-based, 1–4, RKAN paper numbering) wrapped with an RKAN branch (not in the
            AMFACPose paper; () = off). rkan_reduce, rkan_degree: RKAN reduce factor and Chebyshev degree.
    """

    input_size: tuple[int, int] = (384, 288)
    depth: int = 34
    num_keypoints: int = 17
    stem_channels: tuple[int, ...] = (32, 32, 64)
    maxpool: bool = False
    block_activation: str = "relu"
    dsc: bool = True
    afpn: bool = True
    afpn_levels: tuple[int, ...] = (1, 2, 3)
    afpn_width: int = 128
    dgcb: bool = True
    dgcb_mode: str = "dual"
    scrm: str = "last"
    se: bool = True
    coordconv: bool = True
    head_embed_dim: int = 1
    head_hidden: int = 64
    split_ratio: float = 2.0
    simcc_label: str = "smoothed_onehot"
    simcc_sigma: tuple[float, float] = (6.0, 6.0)
    rkan_stages: tuple[int, ...] = ()
    rkan_reduce: int = 4
    rkan_degree: int = 3


class AMFACPose(nn.Module):
    """The AMFACPose network. (B, 3, H, W) normalised RGB -> ``(x_logits (B, K, k·W), y_logits (B, K, k·H))``."""

    def __init__(self, cfg: AMFACPoseConfig):
        super().__init__()
        if cfg.scrm not in ("last", "all", "none"):
            raise ValueError(f"scrm must be last|all|none, got {cfg.scrm!r}")
        self.cfg = cfg
        self.backbone = DSCResNet(cfg.depth, tuple(cfg.stem_channels), cfg.coordconv, cfg.maxpool, cfg.dsc,
                                  cfg.block_activation, cfg.se, cfg.scrm,
                                  rkan=rkan_hook(tuple(cfg.rkan_stages), cfg.rkan_reduce, cfg.rkan_degree)
                                  if cfg.rkan_stages else None)
        H, W = cfg.input_size
        strides, chans = self.backbone.strides, self.backbone.channels
        if cfg.afpn:
            levels = tuple(cfg.afpn_levels)
            self.levels = levels
            self.neck = AFPN(tuple(chans[i] for i in levels), cfg.afpn_width, cfg.dgcb, cfg.dgcb_mode)
            stride, head_in = strides[levels[0]], cfg.afpn_width
        else:
            self.levels = (3,)
            self.neck = None
            stride, head_in = strides[3], chans[3]
        feat = (-(-H // stride), -(-W // stride))
        bins = (int(round(W * cfg.split_ratio)), int(round(H * cfg.split_ratio)))
        self.head = SimCCMLPHead(head_in, feat, cfg.num_keypoints, bins, cfg.head_embed_dim, cfg.head_hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(x)
        y = self.neck([feats[i] for i in self.levels]) if self.neck is not None else feats[3]
        return self.head(y)


def _codec(cfg: AMFACPoseConfig) -> dict:
    # Spec §7.2: one-hot labels with label smoothing ε = 0.1 (SimCC default); temperature τ = 0.1 (β = 10).
    # The spec's alternative, Gaussian labels (σ in bins; normalised to sum ≈ 1 so the KL target is a distribution),
    # rewards a prediction for being near the truth, which a one-hot label does not: from scratch it learns faster.
    if cfg.simcc_label == "gaussian":
        return {"type": "simcc", "split_ratio": cfg.split_ratio, "label": "gaussian",
                "sigma": list(cfg.simcc_sigma), "normalize": True, "beta": 10.0, "decode": "expectation"}
    if cfg.simcc_label != "smoothed_onehot":
        raise ValueError(f"simcc_label must be smoothed_onehot or gaussian, got {cfg.simcc_label!r}")
    return {"type": "simcc", "split_ratio": cfg.split_ratio, "label": "smoothed_onehot", "label_smoothing": 0.1,
            "beta": 10.0, "decode": "expectation"}


_LOSS = {"type": "kl_discret", "beta": 10.0, "label_softmax": False, "use_target_weight": True}


def _register(name: str, cfg: AMFACPoseConfig, description: str, paper: dict | None = None,
              weights: str | None = None) -> None:
    register_model(ModelSpec(
        name=name, family="amfacpose", build=AMFACPose, config=cfg, codec=_codec(cfg), loss=_LOSS,
        codec_for=_codec, description=description, udp=True, paper=paper or {}, weights=weights,
    ))


_register("amfacpose-r34", AMFACPoseConfig(input_size=(384, 288), depth=34),
          "AMFACPose ResNet-34, 384×288 (paper's main model)", {"ap": 76.6, "params_m": 3.8, "gflops": 5.2})
_register("amfacpose-r18", AMFACPoseConfig(input_size=(256, 256), depth=18),
          "AMFACPose ResNet-18, 256×256", {"ap": 72.1, "params_m": 2.4, "gflops": 1.9})
_register("amfacpose-r34-256x192", AMFACPoseConfig(input_size=(256, 192), depth=34),
          "AMFACPose ResNet-34 at the common 256×192 input")
_register("amfacpose-r18-256x192", AMFACPoseConfig(input_size=(256, 192), depth=18),
          "AMFACPose ResNet-18 at the common 256×192 input (small, fast)")
# 128×96 (a quarter of the pixels of 256×192): trains about 5× faster per image on a CPU (18.8 against 3.8 img/s,
# batch 32, 2 threads, channels_last), so a CPU-only budget gets several times more epochs (weights/README.md).
# Gaussian SimCC labels (spec §7.2's alternative) with σ = 3 bins = 1.5 px at this input (RTMPose's σ of 4.9/5.66
# bins at 256×192 scaled to half the size, rounded up): measured on the shipped run, one-hot labels left the model
# at the mean pose after 5 epochs from scratch (weights/README.md).
_register("amfacpose-r18-128x96", AMFACPoseConfig(input_size=(128, 96), depth=18, simcc_label="gaussian",
                                                  simcc_sigma=(3.0, 3.0)),
          "AMFACPose ResNet-18 at 128×96, Gaussian SimCC labels (fastest; for CPU-only training budgets)",
          weights="amfacpose-r18-128x96-coco-lsp.safetensors")  # weights/README.md: COCO + LSP-Extended, CPU-trained
# RKAN (Yu, Wu, Gui 2024) on stages 3-4 with reduce factor 2: the placement and factor the RKAN paper found best
# (its Appendix E and reduce-factor study); an option of this repository, not part of AMFACPose.
_register("amfacpose-r34-rkan", AMFACPoseConfig(input_size=(384, 288), depth=34, rkan_stages=(3, 4), rkan_reduce=2),
          "AMFACPose ResNet-34 + RKAN on stages 3-4, 384×288 (not in the paper)")
