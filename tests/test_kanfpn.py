"""KAN-FPN-Stem family (spec §3): every ablation stage builds, runs forward/backward, has the measured size; the
P2 -> ViT hand-off shape; ViTPose-S weights into the hybrid; RKAN on the ResNet-50 stem."""

from __future__ import annotations

import pytest
import torch

from kanpose_cli.core.models import create_model, get_spec, list_models
from kanpose_cli.core.models.backbones.resnet50 import ResNet50Features
from kanpose_cli.core.models.complexity import count_macs, count_params
from kanpose_cli.core.weights.convert import convert_vitpose_to_hybrid, load_foreign_weights
from kanpose_cli.core.models.kanfpn import P2Reducer

# measured with count_params / count_macs (256×192, 1 image); see docs/kanfpn.md
EXPECTED = {
    0: (24_290_577, 5.594),
    1: (25_016_769, 5.964),
    2: (49_182_673, 12.034),
    3: (51_715_265, 12.040),
    4: (49_396_901, 12.588),
    5: (49_216_929, 12.034),
    6: (50_937_005, 13.327),
}


_CACHE: dict[str, object] = {}


def _model(name: str):
    """Build each variant once per test session (construction dominates the run time on 2 cores)."""
    if name not in _CACHE:
        torch.manual_seed(0)
        _CACHE[name] = create_model(name)
    return _CACHE[name]


def test_registry_names():
    names = set(list_models("kanfpn"))
    assert {f"kanfpn-s{i}" for i in range(7)} | {"kanfpn", "kanfpn-rkan"} <= names
    assert get_spec("kanfpn").config == get_spec("kanfpn-s4").config
    assert {"vitpose-s", "vitpose-b", "vitpose-s-simple", "vitpose-b-simple"} <= set(list_models("vitpose"))
    spec = get_spec("kanfpn")
    assert spec.codec["type"] == "heatmap" and spec.loss["type"] == "joints_mse" and spec.udp
    assert spec.config.pretrained_backbone is False


# s2 and s5 only differ from s3/s4 by switches whose code paths those stages already run: slow-marked
@pytest.mark.parametrize("stage", [0, 1, pytest.param(2, marks=pytest.mark.slow), 3, 4,
                                   pytest.param(5, marks=pytest.mark.slow), 6])
def test_stage_builds_runs_and_size(stage):
    model = _model(f"kanfpn-s{stage}")
    params, gmacs = EXPECTED[stage]
    assert count_params(model.net) == params
    model.train()
    x = torch.randn(1, 3, 256, 192)
    tokens = model.net.tokens(x)
    assert tokens.shape == (1, 384, 16, 12)  # hand-off to the ViT blocks
    out = model(x)
    assert out.shape == (1, 17, 64, 48)
    out.square().mean().backward()
    model.eval()
    grads = [p.grad for p in model.net.backbone.blocks[0].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if model.net.stem is not None:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.net.stem.parameters())
    model.zero_grad(set_to_none=True)
    if stage in (0, 4):
        assert abs(count_macs(model.net, (256, 192)) / 1e9 - gmacs) < 0.01 * gmacs


def test_stage_structure():
    s4 = _model("kanfpn-s4").net
    assert type(s4.stem.fpn.smooth).__name__ == "BottleneckKAGNConv2d" and s4.stem.fpn.smooth.padding == 1
    assert count_params(s4.stem.fpn.smooth) == 770_052
    assert all(type(lat.cbam_after).__name__ == "CBAM" for lat in s4.stem.fpn.laterals)
    assert s4.backbone.patch_embed is None
    assert s4.stem.p2(torch.randn(1, 3, 256, 192)).shape == (1, 256, 64, 48)


@pytest.mark.parametrize("mode", ["proj_dwconv", "proj_avgpool", "patchify"])
def test_reducer_hand_off_shape(mode):
    red = P2Reducer(256, 384, mode)
    assert red(torch.randn(2, 256, 64, 48)).shape == (2, 384, 16, 12)
    with pytest.raises(ValueError):
        P2Reducer(256, 384, "nope")


def test_spec_budget_with_avgpool_reducer():
    # spec §3.6: ResNet-50 + laterals + 4 CBAM + KAGN + 1×1 proj + ViT-S w/o patch embed + classic head; the
    # default reducer adds a depthwise 4×4 conv (384·16 + 384), the avg-pool reducer nothing
    net = _model("kanfpn-s4").net
    assert count_params(net.stem.reducer.reduce) == 6_528
    assert count_params(net) - 6_528 == 49_390_373
    assert count_params(P2Reducer(256, 384, "proj_avgpool")) == 98_688


def test_vitpose_s_weights_into_kanfpn(tmp_path):
    vit = _model("kanfpn-s0")  # = ViTPose-S
    sd = {("keypoint_head." + k[5:] if k.startswith("head.") else k): v for k, v in vit.net.state_dict().items()}
    torch.save({"state_dict": sd}, tmp_path / "vitpose-s.pth")
    model = _model("kanfpn-s4")
    report = load_foreign_weights(model, tmp_path / "vitpose-s.pth")
    assert report["skipped"] == ["backbone.patch_embed.proj.bias", "backbone.patch_embed.proj.weight"]
    assert report["missing"] and all(k.startswith("stem.") for k in report["missing"])
    torch.testing.assert_close(model.net.backbone.blocks[3].attn.qkv.weight, vit.net.backbone.blocks[3].attn.qkv.weight)
    torch.testing.assert_close(model.net.head.final_layer.bias, vit.net.head.final_layer.bias)
    # own checkpoints of the hybrid pass through unchanged
    same, rep = convert_vitpose_to_hybrid(model.net.state_dict())
    assert rep["format"] == "native" and len(same) == len(model.net.state_dict())


def test_rkan_on_resnet50_stem():
    body = ResNet50Features(rkan_stages=(3, 4), rkan_reduce=2)
    assert type(body.body.layer3).__name__ == "RKANStage" and type(body.body.layer2).__name__ != "RKANStage"
    feats = body(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 16, 16), (512, 8, 8), (1024, 4, 4), (2048, 2, 2)]
    assert get_spec("kanfpn-rkan").config.rkan_stages == (3, 4)
    # reduce 512->256 + KAN 54 + expand 256->1024 + BN; reduce 1024->512 + 54 + 512->2048 + BN
    extra = (512 * 256 + 54 + 256 * 1024 + 2048) + (1024 * 512 + 54 + 512 * 2048 + 4096)
    assert count_params(body) == 23_508_032 + extra
