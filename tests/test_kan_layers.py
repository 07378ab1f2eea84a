"""KAN convolutions (KAGN, bottleneck KAGN, KACN), CBAM and the RKAN plug-in (spec §3.3, §4)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from kanpose_cli.core.models.backbones.resnet_dsc import DSCResNet
from kanpose_cli.core.models.complexity import count_params
from kanpose_cli.core.models.layers.attention_blocks import CBAM
from kanpose_cli.core.models.layers.kan import (
    BottleneckKAGNConv2d,
    ChebyKANDepthwiseConv2d,
    KACNConv2d,
    KAGNConv2d,
    RKANBlock,
    RKANStage,
    gram_basis,
    rkan_hook,
)


def test_exact_parameter_counts():
    assert count_params(BottleneckKAGNConv2d(256, 256, 3, degree=3, dim_reduction=4)) == 770_052
    assert count_params(BottleneckKAGNConv2d(256, 256, 3, degree=3, dim_reduction=8)) == 643_076
    assert count_params(KAGNConv2d(256, 256, 3, degree=3)) == 2_949_124
    assert count_params(CBAM(256)) == 8_564
    assert count_params(KACNConv2d(64, 32, 3, degree=3)) == 64 * 32 * 4 * 9
    assert count_params(KACNConv2d(64, 32, 3, degree=3, groups=4)) == 64 * 32 * 4 * 9 // 4
    assert count_params(ChebyKANDepthwiseConv2d(3, degree=3)) == 54
    # grouped KAGN: (C_in·C_out·k²/g)·(d+2) + (d+1)
    assert count_params(KAGNConv2d(32, 64, 3, degree=2, groups=4)) == 32 * 64 * 9 // 4 * 4 + 3


def test_gram_basis_with_zero_beta_is_monomials():
    t = torch.rand(2, 3, 5, 4) * 2 - 1
    basis = gram_basis(t, torch.zeros(5), 4)
    assert basis.shape == (2, 15, 5, 4)
    for n in range(5):  # degree-major: channels [n·C, (n+1)·C)
        torch.testing.assert_close(basis[:, n * 3:(n + 1) * 3], t**n)


def test_gram_basis_recurrence_uses_beta():
    t = torch.rand(1, 2, 3, 3)
    w = torch.tensor([0.0, 0.3, 0.0, 0.0])
    basis = gram_basis(t, w, 3)
    # P2 = t·P1 − β(1,2)·P0 with β(1,2) = 2.25·w1
    torch.testing.assert_close(basis[:, 4:6], t * t - 2.25 * 0.3)


@pytest.mark.parametrize("cls", [KAGNConv2d, BottleneckKAGNConv2d, KACNConv2d])
def test_degree_zero_rejected(cls):
    with pytest.raises(ValueError):
        cls(8, 8, 3, degree=0)
    with pytest.raises(ValueError):
        ChebyKANDepthwiseConv2d(3, degree=0)


@pytest.mark.parametrize("cls", [KAGNConv2d, BottleneckKAGNConv2d, KACNConv2d])
def test_same_padding_default_and_backward(cls):
    layer = cls(16, 24, 3, degree=3)
    assert layer.padding == 1
    x = torch.randn(2, 16, 13, 9, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 24, 13, 9)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for n, p in layer.named_parameters() if "beta" not in n)
    # strided / explicit padding follow the usual conv arithmetic
    assert cls(16, 8, 3, stride=2)(x.detach()).shape == (2, 8, 7, 5)
    assert cls(16, 8, 3, padding=0)(x.detach()).shape == (2, 8, 11, 7)


@pytest.mark.parametrize("cls", [KAGNConv2d, BottleneckKAGNConv2d, KACNConv2d])
def test_groups_are_independent(cls):
    torch.manual_seed(0)
    layer = cls(8, 8, 3, degree=2, groups=2, norm_layer=nn.Identity).eval()
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    layer(x)[:, :4].sum().backward()  # outputs of group 0 depend on input group 0 only
    assert x.grad[:, 4:].abs().max() == 0
    assert x.grad[:, :4].abs().max() > 0


def test_no_activation_cache_between_calls():
    layer = KAGNConv2d(4, 4, 3)
    x = torch.randn(1, 4, 5, 5)
    y1 = layer(x)
    y2 = layer(x * 2)
    assert not torch.allclose(y1, y2)
    assert not any("cache" in name for name in dir(layer))


def _cheby_kan_by_patches(layer: ChebyKANDepthwiseConv2d, x: torch.Tensor) -> torch.Tensor:
    """Reference: unfold every channel's zero-padded k×k patches and push each through the shared KAN."""
    b, c, h, w = x.shape
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    patches = F.unfold(x.reshape(b * c, 1, h, w), k, padding=p, stride=s)  # (BC, k², L)
    t = torch.tanh(patches)
    T = [torch.ones_like(t), t]
    for _ in range(2, layer.degree + 1):
        T.append(2 * t * T[-1] - T[-2])
    T = torch.stack(T[: layer.degree + 1], 1)  # (BC, d+1, k², L)
    coeff = (layer.cheby_coeffs * layer.scaler[0]).reshape(layer.degree + 1, k * k)
    out = (T * coeff[None, :, :, None]).sum((1, 2)) + (patches * layer.base_weight.reshape(k * k, 1)).sum(1)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return out.reshape(b, c, ho, wo)


@pytest.mark.parametrize("stride", [1, 2])
def test_cheby_kan_depthwise_matches_patch_reference(stride):
    torch.manual_seed(0)
    layer = ChebyKANDepthwiseConv2d(3, stride=stride, degree=3)
    with torch.no_grad():
        layer.scaler.uniform_(0.5, 1.5)
    x = torch.randn(2, 5, 9, 7) * 2
    torch.testing.assert_close(layer(x), _cheby_kan_by_patches(layer, x), atol=1e-5, rtol=1e-5)


def test_rkan_stage_adds_residual_and_shapes():
    stage = nn.Conv2d(32, 64, 3, stride=2, padding=1)
    wrapped = RKANStage(stage, 32, 64, stride=2, reduce_factor=4, degree=3).eval()
    x = torch.randn(2, 32, 15, 11)
    y = wrapped(x)
    assert y.shape == (2, 64, 8, 6)
    torch.testing.assert_close(y, stage(x) + wrapped.rkan(x))
    # reduce 32->8 (256) + KAN 54 + expand 8->64 (512) + BN 128
    assert count_params(RKANBlock(32, 64, 2, 4, 3)) == 256 + 54 + 512 + 128
    with pytest.raises(ValueError):
        RKANBlock(32, 64, 2, reduce_factor=0)


def test_rkan_hook_in_dsc_resnet():
    with pytest.raises(ValueError):
        rkan_hook((0,))
    net = DSCResNet(18, rkan=rkan_hook((3, 4), reduce_factor=2, degree=3))
    kinds = [type(s).__name__ for s in net.stages]
    assert kinds[2:] == ["RKANStage", "RKANStage"] and "RKANStage" not in kinds[:2]
    x = torch.randn(1, 3, 64, 48)
    feats = net(x)
    assert [f.shape[1:] for f in feats] == [(64, 32, 24), (128, 16, 12), (256, 8, 6), (512, 4, 3)]
    feats[-1].mean().backward()


def test_amfacpose_rkan_config_and_variant():
    from kanpose_cli.core.models import create_model, get_spec

    spec = get_spec("amfacpose-r34-rkan")
    assert spec.config.rkan_stages == (3, 4)
    model = create_model("amfacpose-r18-256x192", overrides={"rkan_stages": [4], "rkan_reduce": 4})
    assert type(model.net.backbone.stages[3]).__name__ == "RKANStage"
    assert type(model.net.backbone.stages[2]).__name__ != "RKANStage"
    x_logits, y_logits = model.net(torch.randn(1, 3, 256, 192))
    assert x_logits.shape == (1, 17, 384) and y_logits.shape == (1, 17, 512)
