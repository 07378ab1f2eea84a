"""torchvision ResNet-50 as a C2–C5 feature extractor for the KAN-FPN-Stem family (spec §3.2), with the
family's two optional changes: CBAM in every bottleneck block (KAN-FPN-Stem ablation stage 3) and RKAN branches
around chosen stages (RKAN plug-in, :mod:`kanpose_cli.core.models.layers.kan`).

ImageNet weights come from torchvision's ``ResNet50_Weights`` enum (downloaded by torchvision on first use) and
are loaded **before** any RKAN wrapping, so the pretrained keys always fit.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.models import ResNet50_Weights, resnet50
from torchvision.models.resnet import Bottleneck, ResNet

from kanpose_cli.core.errors import WeightsError
from kanpose_cli.core.models.layers.attention_blocks import CBAM
from kanpose_cli.core.models.layers.kan import rkan_hook

RESNET50_CHANNELS = (256, 512, 1024, 2048)


class CBAMBottleneck(Bottleneck):
    """torchvision ``Bottleneck`` with CBAM on the residual branch after ``bn3``, before the addition (placement
    of the official CBAM-ResNet, Jongchan/attention-module)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cbam = CBAM(self.bn3.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.cbam(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


def _imagenet_state_dict(weights_name: str) -> dict:
    try:
        weights = ResNet50_Weights[weights_name]
    except KeyError:
        raise WeightsError(f"unknown torchvision ResNet50_Weights {weights_name!r}; "
                           f"known: {', '.join(w.name for w in ResNet50_Weights)}") from None
    try:
        return weights.get_state_dict(progress=True)
    except Exception as exc:  # noqa: BLE001 - no network, corrupt cache ...
        raise WeightsError(f"cannot get torchvision ResNet-50 {weights_name} weights: "
                           f"{type(exc).__name__}: {exc}") from None


class ResNet50Features(nn.Module):
    """ResNet-50 bottom-up pathway returning C2–C5.

    Args:
        cbam: CBAM in every bottleneck block.
        rkan_stages: 1-based stage numbers (1–4) wrapped with an RKAN branch; () = none.
        rkan_reduce, rkan_degree: RKAN reduce factor and Chebyshev degree.
        pretrained: load torchvision ImageNet weights ``weights_name`` (``IMAGENET1K_V1`` / ``IMAGENET1K_V2``);
            CBAM/RKAN parameters keep their random init. Raises WeightsError if they cannot be had.

    Forward: (B, 3, H, W) -> [C2 (B, 256, H/4, W/4), C3 (512, H/8), C4 (1024, H/16), C5 (2048, H/32)].
    """

    def __init__(self, cbam: bool = False, rkan_stages: tuple[int, ...] = (), rkan_reduce: int = 4,
                 rkan_degree: int = 3, pretrained: bool = False, weights_name: str = "IMAGENET1K_V1"):
        super().__init__()
        net = ResNet(CBAMBottleneck, [3, 4, 6, 3]) if cbam else resnet50()
        if pretrained:
            sd = _imagenet_state_dict(weights_name)
            result = net.load_state_dict(sd, strict=False)
            bad = [k for k in result.missing_keys if ".cbam." not in k] + list(result.unexpected_keys)
            if bad:
                raise WeightsError(f"torchvision ResNet-50 weights do not fit: {', '.join(bad[:3])}")
        net.fc = nn.Identity()
        if rkan_stages:
            hook = rkan_hook(tuple(rkan_stages), rkan_reduce, rkan_degree)
            in_chs = (64,) + RESNET50_CHANNELS[:-1]
            for i in range(4):
                name = f"layer{i + 1}"
                setattr(net, name, hook(i, getattr(net, name), in_chs[i], RESNET50_CHANNELS[i], 1 if i == 0 else 2))
        self.body = net
        self.channels = RESNET50_CHANNELS

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b = self.body
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        feats = []
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            x = layer(x)
            feats.append(x)
        return feats
