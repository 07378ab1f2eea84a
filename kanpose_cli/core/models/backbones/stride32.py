"""Stride-32 feature extractors taken from timm (ConvNeXtV2) and torchvision (ResNet-50), for FlatPose (spec §6, §8).

No backbone is re-implemented here: the wrappers only pick the last stage's map. ``pretrained=True`` asks the
library for its ImageNet weights (a network download, not possible on the project's build machines).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class TimmConvNeXtStride32(nn.Module):
    """A timm ConvNeXt(V2) trunk (``num_classes=0``) returning the stage-4 map, normalised with timm's own head
    LayerNorm (applied per pixel, as the official ConvNeXt dense-prediction backbones norm their outputs).

    Built with ``timm.create_model(name, pretrained=pretrained, num_classes=0)`` and run through
    ``forward_features``; this keeps exactly the parameters of spec §6 (``convnextv2_nano`` 14,982,800,
    ``convnextv2_tiny`` 27,866,496), all of them used (``features_only=True`` would drop the 1,280 / 1,536 head-norm
    parameters, which carry pretrained weights).

    Args:
        name: timm model name, optionally with a pretrained tag (``"convnextv2_nano.fcmae_ft_in22k_in1k"``).
        pretrained: load timm's weights. drop_path_rate: stochastic depth inside the backbone.

    Forward: (B, 3, H, W) -> (B, C, ⌈H/32⌉, ⌈W/32⌉). Attributes ``out_channels`` C, ``stride`` 32.
    """

    def __init__(self, name: str = "convnextv2_nano", pretrained: bool = False, drop_path_rate: float = 0.0):
        super().__init__()
        import timm

        self.body = timm.create_model(name, pretrained=pretrained, num_classes=0, drop_path_rate=drop_path_rate)
        self.out_channels = int(self.body.num_features)
        self.stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body.head.norm(self.body.forward_features(x))


class TorchvisionResNetStride32(nn.Module):
    """torchvision ResNet conv1 … layer4 (no pooling/classifier).

    Args:
        name: ``resnet18`` | ``resnet34`` | ``resnet50`` | ``resnet101`` | ``resnet152``.
        pretrained: load torchvision's ``DEFAULT`` ImageNet weights.

    Forward: (B, 3, H, W) -> (B, C, ⌈H/32⌉, ⌈W/32⌉) (C = 2048 for ResNet-50). Attributes ``out_channels``,
    ``stride``.

    Raises:
        ValueError: unknown name.
    """

    def __init__(self, name: str = "resnet50", pretrained: bool = False):
        super().__init__()
        import torchvision

        if name not in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
            raise ValueError(f"unsupported torchvision backbone {name!r}")
        net = getattr(torchvision.models, name)(weights="DEFAULT" if pretrained else None)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = int(net.fc.in_features)
        self.stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def build_stride32_backbone(name: str, library: str = "timm", pretrained: bool = False,
                            drop_path_rate: float = 0.0) -> nn.Module:
    """``library="timm"`` -> :class:`TimmConvNeXtStride32`; ``"torchvision"`` -> :class:`TorchvisionResNetStride32`.

    Raises:
        ValueError: unknown library.
    """
    if library == "timm":
        return TimmConvNeXtStride32(name, pretrained, drop_path_rate)
    if library == "torchvision":
        return TorchvisionResNetStride32(name, pretrained)
    raise ValueError(f"backbone library must be timm|torchvision, got {library!r}")
