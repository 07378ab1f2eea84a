"""FlatPose family (project issue 4): ICA, targeted refinement, heads, codecs, registry variants, complexity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kanpose_cli.core.codecs import build_codec
from kanpose_cli.core.codecs.regression import RegressionCodec
from kanpose_cli.core.models import create_model, get_spec, list_models
from kanpose_cli.core.models.complexity import MacCounter, count_macs, count_params
from kanpose_cli.core.models.flatpose import FlatPose, FlatPoseConfig, sincos_pos_embed_2d
from kanpose_cli.core.models.layers.ica import ICABias, ICABlock, biased_attention
from kanpose_cli.core.models.layers.refine import TargetedRefinement, resolve_topk
from kanpose_cli.core.models.losses import build_loss

torch.set_num_threads(2)


def _twin(name: str, overrides_a: dict, overrides_b: dict):
    """Two models of one variant with different configs but the same weights."""
    torch.manual_seed(0)
    a = create_model(name, overrides=overrides_a)
    b = create_model(name, overrides=overrides_b)
    b.load_state_dict(a.state_dict())
    return a.eval(), b.eval()


def _simcc_targets(model, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    H, W = model.input_size
    encs = []
    for _ in range(batch):
        kpts = rng.uniform([10, 10], [W - 10, H - 10], size=(17, 2))
        encs.append(model.codec.encode(kpts, np.ones(17)))
    return {k: torch.from_numpy(np.stack([e[k] for e in encs])) for k in encs[0]}


# ----------------------------------------------------------------------------------------------- attention / ICA
def test_sdpa_with_bias_equals_explicit():
    torch.manual_seed(0)
    q = torch.randn(2, 8, 5, 32)
    k, v = torch.randn(2, 8, 48, 32), torch.randn(2, 8, 48, 32)
    bias = torch.randn(2, 8, 5, 48) * 3
    fast = biased_attention(q, k, v, bias, "sdpa")
    ref = biased_attention(q, k, v, bias, "explicit")
    assert fast.shape == (2, 8, 5, 32)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        biased_attention(q, k, v, bias, "flash")


def test_ica_block_sdpa_equals_explicit():
    torch.manual_seed(0)
    a = ICABlock(256, 8, ica=True, ica_kwargs={"grid_init": "trunc_normal"}, impl="sdpa").eval()
    b = ICABlock(256, 8, ica=True, ica_kwargs={"grid_init": "trunc_normal"}, impl="explicit").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 48, 256)
    torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def sdpa_explicit_pair():
    return _twin("flatpose-b", {"attn_impl": "sdpa"}, {"attn_impl": "explicit"})


def test_model_sdpa_equals_explicit(sdpa_explicit_pair):
    a, b = sdpa_explicit_pair
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        ta, _ = a.net.forward_tokens(x)
        tb, _ = b.net.forward_tokens(x)
    torch.testing.assert_close(ta, tb, atol=1e-5, rtol=1e-5)


def test_ica_bias_shapes_and_ranges():
    torch.manual_seed(0)
    ica = ICABias(256, 8)
    xq, xk = torch.randn(2, 4, 256), torch.randn(2, 48, 256)
    assert ica(xq, xk).shape == (2, 8, 4, 48)
    assert ica(xk, xk).shape == (2, 8, 48, 48)
    c = ica.coords(xk)
    assert c.shape == (2, 48, 2) and c.abs().max() <= 1.0
    assert float(ica.coords.gamma) == pytest.approx(0.125)  # Table 6: (D')^-1/2 with D' = 64
    assert ica.grid.shape == (1, 64, 16, 16)
    assert ica.mlp[0].in_features == 66 and ica.mlp[0].out_features == 128 and ica.mlp[-1].out_features == 8
    # self-pairs have |Δc| − 1 = (−1, −1) for every token: the bias diagonal is one value per head
    d = torch.diagonal(ica(xk, xk), dim1=-2, dim2=-1)
    torch.testing.assert_close(d, d[..., :1].expand_as(d))


def test_flop_counter_counts_sdpa_with_mask(sdpa_explicit_pair):
    q = torch.randn(1, 8, 48, 32)
    k, v, bias = torch.randn(1, 8, 48, 32), torch.randn(1, 8, 48, 32), torch.randn(1, 8, 48, 48)
    counts = []
    for impl in ("sdpa", "explicit"):
        with MacCounter() as c:
            biased_attention(q, k, v, bias, impl)
        counts.append(c.macs)
    assert counts[0] == counts[1] == 2 * 8 * 48 * 48 * 32  # QKᵀ and A·V
    a, b = sdpa_explicit_pair
    assert count_macs(a.net, a.input_size) == count_macs(b.net, b.input_size)


# ---------------------------------------------------------------------------------------------------- refinement
def test_resolve_topk():
    assert resolve_topk("full", 48) is None and resolve_topk(0, 48) is None and resolve_topk(None, 48) is None
    assert resolve_topk(4, 48) == 4 and resolve_topk(100, 48) == 48
    for bad in (-1, "half"):
        with pytest.raises(ValueError):
            resolve_topk(bad, 48)


def test_topk_full_equals_no_selection_path():
    torch.manual_seed(0)
    sel = TargetedRefinement(256, 8, topk=48).eval()  # gather / cross-attend / scatter over all 48 tokens
    full = TargetedRefinement(256, 8, topk="full").eval()  # plain refinement of every token, no selection
    full.load_state_dict(sel.state_dict())
    x = torch.randn(2, 48, 256)
    out_sel, idx = sel(x, return_index=True)
    out_full, none = full(x, return_index=True)
    assert idx.shape == (2, 48) and none is None
    torch.testing.assert_close(out_sel, out_full, atol=1e-5, rtol=1e-5)
    for k in (0, None):
        alt = TargetedRefinement(256, 8, topk=k).eval()
        alt.load_state_dict(sel.state_dict())
        torch.testing.assert_close(alt(x), out_full)


def test_topk_full_equals_no_selection_model_level():
    a, b = _twin("flatpose-b", {"topk": 12, "input_size": (128, 96)}, {"topk": "full", "input_size": (128, 96)})
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


def test_refinement_only_touches_selected_tokens():
    torch.manual_seed(0)
    blk = TargetedRefinement(256, 8, topk=4).eval()
    x = torch.randn(2, 48, 256)
    out, idx = blk(x, return_index=True)
    assert out.shape == x.shape and idx.shape == (2, 4)
    s = blk.salience(blk.norm1(x)).squeeze(-1)
    assert torch.equal(idx.sort(1).values, s.topk(4, dim=1).indices.sort(1).values)
    changed = (out != x).any(-1)
    mask = torch.zeros_like(changed)
    mask.scatter_(1, idx, True)
    assert torch.equal(changed, mask)


def _assert_salience_and_grid_grads(model):
    for blk in model.net.refine:
        assert blk.salience.weight.grad is not None and blk.salience.weight.grad.abs().sum() > 0
    for blk in model.net.coarse:
        if blk.attn.ica is not None:
            g = blk.attn.ica.grid.grad
            assert g is not None and g.abs().sum() > 0
            assert blk.attn.ica.coords.proj.weight.grad.abs().sum() > 0


def test_gradients_reach_salience_head_and_bias_grid():
    torch.manual_seed(0)
    # DropPath off: with it a whole ICA branch may be dropped for the batch, legitimately giving zero gradient
    model = create_model("flatpose-b", overrides={"input_size": (128, 96), "drop_path": 0.0}).train()
    x = torch.randn(2, 3, 128, 96)
    loss = build_loss(model.spec.loss)(model(x), _simcc_targets(model, 2))
    loss.backward()
    _assert_salience_and_grid_grads(model)


def test_literal_overwrite_gives_salience_no_gradient():
    """Why the sigmoid gate exists: with the paper's plain overwrite, top-K blocks the salience gradient."""
    torch.manual_seed(0)
    blk = TargetedRefinement(64, 4, topk=4, gate="none")
    blk(torch.randn(2, 12, 64)).sum().backward()
    assert blk.salience.weight.grad is None or blk.salience.weight.grad.abs().sum() == 0


# ------------------------------------------------------------------------------------------------ sizes and MACs
@pytest.mark.parametrize("name,params_m,gmacs,backbone_params,channels", [
    ("flatpose-b", 21.6, 2.8, 14_982_800, 640), ("flatpose-l", 37.3, 4.9, 27_866_496, 768)])
def test_params_and_macs_match_paper(name, params_m, gmacs, backbone_params, channels):
    model = create_model(name)
    backbone = model.net.backbone
    assert count_params(backbone) == backbone_params  # spec §6: ConvNeXtV2-N/T without the classifier
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 256, 192)).shape == (1, channels, 8, 6)
    assert model.spec.paper["params_m"] == params_m and model.spec.paper["gflops"] == gmacs
    p = count_params(model.net) / 1e6
    m = count_macs(model.net, model.input_size) / 1e9
    assert abs(p / params_m - 1) <= 0.03, p
    assert abs(m / gmacs - 1) <= 0.10, m


def test_ica_params_per_block():
    """4·D·D' projections + 64×16×16 grid + MLP(66→128→8) = 91,528 parameters per coarse block (no ICA: 0)."""
    ica = ICABias(256, 8)
    assert count_params(ica) == 4 * 256 * 64 + 64 * 16 * 16 + (66 * 128 + 128) + (128 * 8 + 8)
    with_ica = count_params(ICABlock(256, 8, ica=True))
    assert with_ica - count_params(ICABlock(256, 8, ica=False)) == count_params(ica)


# --------------------------------------------------------------------------------------------- variants / shapes
@pytest.mark.parametrize("name", list_models("flatpose"))
def test_variant_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    H, W = model.input_size
    x = torch.randn(1, 3, H, W)
    out = model(x)
    loss = build_loss(model.spec.loss)
    if model.config.head == "simcc":
        xl, yl = out
        assert xl.shape == (x.shape[0], 17, 2 * W) and yl.shape == (x.shape[0], 17, 2 * H)
        targets = _simcc_targets(model, x.shape[0])
    else:
        assert out.shape == (x.shape[0], 17, 2) and ((out > 0) & (out < 1)).all()
        targets = {"target_coords": torch.rand(x.shape[0], 17, 2), "target_weight": torch.ones(x.shape[0], 17)}
    value = loss(out, targets)
    value.backward()
    assert torch.isfinite(value)
    assert model.net.proj.weight.grad is not None and model.net.head.proj.weight.grad.abs().sum() > 0


def test_predict_with_flip(sdpa_explicit_pair):
    model = sdpa_explicit_pair[0]
    kpts, scores = model.predict(torch.randn(2, 3, 256, 192), flip=True)
    assert kpts.shape == (2, 17, 2) and scores.shape == (2, 17)


def test_registered_variants_and_codecs():
    b, l384 = get_spec("flatpose-b"), get_spec("flatpose-l-384x288")
    assert b.codec == {"type": "simcc", "split_ratio": 2.0, "label": "gaussian", "sigma": (4.9, 5.66),
                       "normalize": False, "beta": 10.0}
    assert l384.codec["sigma"] == (6.0, 6.93) and l384.config.topk == 6 and l384.input_size == (384, 288)
    assert b.loss == {"type": "kl_discret", "beta": 10.0, "label_softmax": True, "label_beta": 10.0,
                      "use_target_weight": True}
    large = get_spec("flatpose-l").config
    assert (large.backbone, large.coarse_blocks, large.refine_blocks, large.topk) == ("convnextv2_tiny", 6, 3, 4)
    assert (b.config.backbone, b.config.coarse_blocks, b.config.refine_blocks, b.config.topk, b.config.embed_dim) \
        == ("convnextv2_nano", 4, 2, 4, 256)
    assert get_spec("flatpose-r50").config.backbone_library == "torchvision"
    reg = get_spec("flatpose-b-reg")
    assert reg.codec == {"type": "regression"} and reg.loss["type"] == "l1"


def test_ablation_switches_via_overrides():
    """Table 5 switches through create_model(overrides=...) (small input to stay fast)."""
    small = {"input_size": (128, 96)}
    m = create_model("flatpose-b", overrides={**small, "ica": False, "coarse_blocks": 3, "refine_blocks": 3,
                                              "topk": 2})
    assert all(blk.attn.ica is None for blk in m.net.coarse)
    assert len(m.net.coarse) == 3 and len(m.net.refine) == 3 and m.net.refine[0].topk == 2
    m = create_model("flatpose-b", overrides={**small, "topk": "full", "refine_ica": True, "salience_gate": "none",
                                              "upsample_layers": 2, "upsample_position": "before"})
    assert m.net.refine[0].attn.ica is not None and m.net.token_hw == (16, 12)
    with torch.no_grad():
        assert m(torch.randn(1, 3, 128, 96))[0].shape == (1, 17, 192)
    m = create_model("flatpose-b", overrides={**small, "head": "regression", "upsample_layers": 1},
                     codec_overrides={"type": "regression"})
    assert isinstance(m.codec, RegressionCodec) and m.net.token_hw == (4, 3) and m.net.head_t == 8
    kpts, scores = m.predict(torch.randn(1, 3, 128, 96), flip=True)
    assert kpts.shape == (1, 17, 2) and torch.all(scores == 1)
    with torch.no_grad():
        assert m(torch.randn(1, 3, 128, 96)).shape == (1, 17, 2)
    for bad in ({"head": "heatmap"}, {"attn_impl": "flash"}, {"topk": "some"}, {"salience_gate": "hard"},
                {"upsample_position": "middle"}):
        with pytest.raises(ValueError):
            FlatPose(FlatPoseConfig(**{**small, **bad}))


# ------------------------------------------------------------------------------------ codec / loss / pos-encoding
def test_regression_codec_round_trip_and_flip():
    codec = build_codec({"type": "regression"}, (256, 192))
    kpts = np.array([[10.0, 20.0], [191.5, 0.0], [-3.0, 50.0]])
    enc = codec.encode(kpts, np.array([1.0, 1.0, 1.0]))
    assert enc["target_coords"].shape == (3, 2) and enc["target_weight"].tolist() == [1.0, 1.0, 0.0]
    dec, scores = codec.decode(torch.from_numpy(enc["target_coords"])[None])
    torch.testing.assert_close(dec[0], torch.tensor(kpts, dtype=torch.float32))
    # the prediction for a mirrored crop, flipped back, is the original prediction
    pred = torch.rand(1, 3, 2)
    mirrored = pred.clone()
    mirrored[..., 0] = (191.0 / 192.0) - pred[..., 0]
    torch.testing.assert_close(codec.flip_back(mirrored, [0, 1, 2]), pred)
    assert codec.config() == {"type": "regression"}
    with pytest.raises(TypeError):
        RegressionCodec((256, 192), bogus=1)


def test_l1_loss():
    loss = build_loss({"type": "l1"})
    t = torch.rand(2, 17, 2)
    w = torch.ones(2, 17)
    assert float(loss(t, {"target_coords": t, "target_weight": w})) == 0.0
    assert float(loss(t + 0.1, {"target_coords": t, "target_weight": w})) == pytest.approx(0.2, abs=1e-5)
    assert float(loss(t + 0.1, {"target_coords": t, "target_weight": torch.zeros(2, 17)})) == 0.0


def test_sincos_pos_embed():
    pe = sincos_pos_embed_2d(8, 6, 256)
    assert pe.shape == (48, 256)
    assert torch.unique(pe, dim=0).shape[0] == 48  # every position distinct
    assert pe.abs().max() <= 1.0
    # token 0 is (x=0, y=0): sin parts 0, cos parts 1
    assert torch.equal(pe[0, :64], torch.zeros(64)) and torch.equal(pe[0, 64:128], torch.ones(64))
