"""AMFACPose's modified ResNet-18/34: CoordConv stem (BN + Mish), depthwise-separable convs in every BasicBlock,
SE after each stage, SCRM on the last stage (AMFACPose §3.1, §3.4; spec §7.2).

Built on torchvision's ``ResNet``/``BasicBlock`` (same stage layout, ``_make_layer`` and 1×1 stride-2 downsample
path); only the stem and the block convolutions are replaced.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet

from kanpose_cli.core.models.layers.attention_blocks import SCRM, SqueezeExcite
from kanpose_cli.core.models.layers.coordconv import CoordConv2d

RESNET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
STAGE_CHANNELS = (64, 128, 256, 512)


class DepthwiseSeparableConv(nn.Sequential):
    """Depthwise k×k (groups = C_in, stride s, no bias) -> pointwise 1×1 C_in→C_out (no bias).

    Params ``C_in·k² + C_in·C_out``; (B, C_in, H, W) -> (B, C_out, H/s, W/s). The BN follows in the block.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                      groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


class DSCBasicBlock(BasicBlock):
    """torchvision ``BasicBlock`` whose two 3×3 convs are depthwise-separable; activation ReLU (default) or Mish."""

    activation: type[nn.Module] = nn.ReLU

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, dilation, norm_layer)
        self.conv1 = DepthwiseSeparableConv(inplanes, planes, stride)
        self.conv2 = DepthwiseSeparableConv(planes, planes, 1)
        self.relu = self.activation(inplace=True)


class MishDSCBasicBlock(DSCBasicBlock):
    activation = nn.Mish


def conv_bn_mish(in_ch: int, out_ch: int, stride: int, coord: bool) -> nn.Sequential:
    """3×3 (Coord)Conv -> BN -> Mish, used by the stem."""
    conv = (CoordConv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False) if coord
            else nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False))
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch), nn.Mish(inplace=True))


class DSCResNet(nn.Module):
    """Backbone returning the four stage outputs.

    Args:
        depth: 18 or 34.
        stem_channels: widths of the stem's 3×3 conv series; the first has stride 2 (AMFACPose: "a series of 3×3
            CoordConv2d layers, each followed by BN and Mish").
        coordconv: CoordConv in the stem (Table 6 ablation) — plain convs if False.
        maxpool: ResNet's 3×3/2 max-pool after the stem (stages at strides 4/8/16/32) — default off (strides
            2/4/8/16), the layout that reproduces the paper's GFLOPs (spec §7.3).
        dsc: depthwise-separable convs in the blocks (plain torchvision BasicBlock if False).
        block_activation: ``"relu"`` or ``"mish"`` inside the blocks.
        se: SE after every stage. scrm: ``"last"`` (default), ``"all"`` stages, or ``"none"``.
        se_reduction: SE reduction.
        rkan: optional ``fn(stage_index, stage_module, in_ch, out_ch, stride) -> nn.Module`` wrapping stages
            (RKAN plug-in), or None.

    Forward: (B, 3, H, W) -> list of 4 tensors (B, C_i, H/s_i, W/s_i), C = 64/128/256/512.
    """

    def __init__(self, depth: int = 34, stem_channels: tuple[int, ...] = (32, 32, 64), coordconv: bool = True,
                 maxpool: bool = False, dsc: bool = True, block_activation: str = "relu", se: bool = True,
                 scrm: str = "last", se_reduction: int = 16, rkan=None):
        super().__init__()
        if depth not in RESNET_LAYERS:
            raise ValueError(f"ResNet depth must be 18 or 34, got {depth}")
        if stem_channels[-1] != 64:
            raise ValueError("the stem must end with 64 channels (ResNet layer1 width)")
        block = BasicBlock if not dsc else (MishDSCBasicBlock if block_activation == "mish" else DSCBasicBlock)
        resnet = ResNet(block, list(RESNET_LAYERS[depth]))
        layers, in_ch = [], 3
        for i, ch in enumerate(stem_channels):
            layers.append(conv_bn_mish(in_ch, ch, 2 if i == 0 else 1, coordconv))
            in_ch = ch
        if maxpool:
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*layers)
        stages = [resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4]
        if rkan is not None:
            in_chs = (64,) + STAGE_CHANNELS[:-1]
            stages = [rkan(i, stage, in_chs[i], STAGE_CHANNELS[i], 1 if i == 0 else 2)
                      for i, stage in enumerate(stages)]
        self.stages = nn.ModuleList(stages)
        self.se = nn.ModuleList([SqueezeExcite(c, se_reduction) if se else nn.Identity() for c in STAGE_CHANNELS])
        self.scrm = nn.ModuleList([
            SCRM(c) if (scrm == "all" or (scrm == "last" and i == 3)) else nn.Identity()
            for i, c in enumerate(STAGE_CHANNELS)
        ])
        self.strides = tuple(s * (2 if maxpool else 1) for s in (2, 4, 8, 16))
        self.channels = STAGE_CHANNELS
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage, se, scrm in zip(self.stages, self.se, self.scrm):
            x = scrm(se(stage(x)))
            feats.append(x)
        return feats
