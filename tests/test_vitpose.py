"""ViTPose (spec §2): sizes, heatmap codec, JointsMSE, foreign weights, and an independent check against Hugging
Face transformers' ``VitPoseForPoseEstimation`` on real COCO person crops."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from kanpose_cli.core.codecs import CODECS, build_codec
from kanpose_cli.core.data import transforms as T
from kanpose_cli.core.errors import WeightsError
from kanpose_cli.core.keypoints import get_keypoint_set
from kanpose_cli.core.models import create_model, get_spec
from kanpose_cli.core.models.backbones.vit import ViT
from kanpose_cli.core.models.complexity import count_params
from kanpose_cli.core.weights.convert import convert_vitpose, load_foreign_weights
from kanpose_cli.core.models.heads.heatmap import ClassicHeatmapHead
from kanpose_cli.core.models.losses import build_loss
from conftest import perturb_batchnorm

FLIP = get_keypoint_set("coco17").flip_index


@pytest.fixture(scope="module")
def vitpose_s():
    torch.manual_seed(0)
    return create_model("vitpose-s")


def test_vitpose_s_sizes(vitpose_s):
    assert count_params(vitpose_s.net) == 24_290_577
    assert count_params(vitpose_s.net.backbone) == 21_663_744
    assert count_params(vitpose_s.net.head) == 2_626_833
    x = torch.randn(1, 3, 256, 192)
    assert vitpose_s.net.backbone.patch_embed(x).shape == (1, 384, 16, 12)
    assert vitpose_s.net.backbone.pos_embed.shape == (1, 193, 384)
    assert vitpose_s(x).shape == (1, 17, 64, 48)
    assert count_params(create_model("vitpose-s-simple").net) == 21_722_513


def test_vitpose_b_sizes():
    backbone = ViT((256, 192), embed_dim=768, depth=12, num_heads=12)
    assert count_params(backbone) == 85_794_816
    assert count_params(ClassicHeatmapHead(768, 17)) == 4_199_697  # ViTPose-B classic: 89,994,513 in all
    assert get_spec("vitpose-b").config.embed_dim == 768 and get_spec("vitpose-b-simple").config.decoder == "simple"


def test_vitpose_forward_backward(vitpose_s):
    vitpose_s.train()
    try:
        out = vitpose_s(torch.randn(2, 3, 256, 192))
        codec = vitpose_s.codec
        targets = [codec.encode(np.array([[50.0 + i, 80.0]] * 17), np.ones(17)) for i in range(2)]
        batch = {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}
        loss = build_loss(get_spec("vitpose-s").loss)(out, batch)
        loss.backward()
        assert torch.isfinite(loss) and vitpose_s.net.backbone.blocks[0].attn.qkv.weight.grad is not None
    finally:
        vitpose_s.zero_grad(set_to_none=True)
        vitpose_s.eval()


# --------------------------------------------------------------------------------------------------- codec
def test_heatmap_codec_registered_and_config_round_trip():
    assert "heatmap" in CODECS
    codec = build_codec({"type": "heatmap", "sigma": 2.0}, (256, 192))
    assert codec.heatmap_size == (64, 48)
    again = build_codec(codec.config(), (256, 192))
    assert again.config() == codec.config()


def test_udp_target_matches_definition():
    codec = build_codec({"type": "heatmap"}, (256, 192))
    kpt = np.array([[100.3, 57.9], [-200.0, 10.0]])
    out = codec.encode(kpt, np.array([1.0, 1.0]))
    hm, w = out["heatmaps"], out["target_weight"]
    assert hm.shape == (2, 64, 48) and w.tolist() == [1.0, 0.0] and hm[1].max() == 0
    mu = kpt[0] / np.array([191 / 47, 255 / 63])
    cx, cy = np.floor(mu + 0.5).astype(int)
    assert hm[0].argmax() == cy * 48 + cx
    expect = np.exp(-((cx + 1 - mu[0]) ** 2 + (cy - mu[1]) ** 2) / 8)
    assert abs(hm[0, cy, cx + 1] - expect) < 1e-6
    assert hm[0, cy, cx + 7] == 0 and hm[0, cy, cx + 6] > 0  # 13×13 window
    assert codec.encode(kpt, np.array([0.0, 1.0]))["target_weight"][0] == 0


def test_udp_encode_dark_decode_round_trip():
    codec = build_codec({"type": "heatmap"}, (256, 192))
    rng = np.random.default_rng(0)
    stride = np.array(codec.feat_stride)
    # sub-pixel heatmap positions at least blur radius + 1 px from the border (the reflect-padded blur biases
    # DARK near the edges, as in mmpose)
    hm_pts = rng.uniform([7, 7], [41, 57], size=(200, 2))
    target = codec.encode(hm_pts * stride, np.ones(200))["heatmaps"]
    coords, maxval = codec.decode_heatmap_pixels(torch.from_numpy(target)[None])
    err = (coords[0].numpy() - hm_pts)
    assert np.abs(err).max() < 0.1, np.abs(err).max()
    kpts, scores = codec.decode(torch.from_numpy(target)[None])
    assert np.abs(kpts[0].numpy() - hm_pts * stride).max() < 0.1 * stride.max()
    assert kpts.dtype == torch.float32 and ((scores >= 0) & (scores <= 1)).all()
    # argmax-only decode is worse than DARK on sub-pixel targets
    plain = build_codec({"type": "heatmap", "dark": False}, (256, 192))
    coords_plain, _ = plain.decode_heatmap_pixels(torch.from_numpy(target)[None])
    assert np.abs(coords_plain[0].numpy() - hm_pts).mean() > np.abs(err).mean()


def test_flip_back_twice_is_identity_and_matches_transformers():
    codec = build_codec({"type": "heatmap"}, (256, 192))
    hm = torch.randn(2, 17, 64, 48)
    torch.testing.assert_close(codec.flip_back(codec.flip_back(hm, FLIP), FLIP), hm)
    flip_back_hf = pytest.importorskip("transformers.models.vitpose.modeling_vitpose").flip_back
    pairs = torch.tensor([[i, FLIP[i]] for i in range(17) if i < FLIP[i]])
    torch.testing.assert_close(codec.flip_back(hm, FLIP), flip_back_hf(hm, pairs))


def test_flip_back_mirrors_keypoints():
    codec = build_codec({"type": "heatmap"}, (256, 192))
    kpts = np.array([[60.25, 100.5]] * 17)
    kpts[5] = [30.0, 40.0]  # left shoulder
    mirrored = kpts.copy()
    mirrored[:, 0] = 191 - mirrored[:, 0]
    mirrored = mirrored[list(FLIP)]  # keypoint k of the mirrored crop is flip_index[k] of the original
    hm_mirror = torch.from_numpy(codec.encode(mirrored, np.ones(17))["heatmaps"])[None]
    back, _ = codec.decode(codec.flip_back(hm_mirror, FLIP))
    assert np.abs(back[0].numpy() - kpts).max() < 0.2


def test_joints_mse():
    loss = build_loss({"type": "joints_mse"})
    pred, gt = torch.rand(2, 17, 8, 6), torch.rand(2, 17, 8, 6)
    w = torch.ones(2, 17)
    w[0, 3] = 0
    expect = sum(((pred[:, j] - gt[:, j]) * w[:, j, None, None]).pow(2).mean() for j in range(17)) / 17
    torch.testing.assert_close(loss(pred, {"heatmaps": gt, "target_weight": w}), expect)
    assert loss(gt, {"heatmaps": gt, "target_weight": w}) == 0


# ------------------------------------------------------------------------------------------------ weights
def _official_layout(model) -> dict:
    sd = model.net.state_dict()
    return {"state_dict": {("keypoint_head." + k[5:] if k.startswith("head.") else k): v for k, v in sd.items()},
            "meta": {"epoch": 210}}


def test_load_official_checkpoint_round_trip(vitpose_s, tmp_path):
    path = tmp_path / "vitpose_small.pth"
    torch.save(_official_layout(vitpose_s), path)
    torch.manual_seed(1)
    other = create_model("vitpose-s")
    report = load_foreign_weights(other, path)
    assert report["format"] == "mmpose-vitpose" and report["unused"] == [] and report["missing"] == []
    x = torch.randn(1, 3, 256, 192)
    torch.testing.assert_close(other(x), vitpose_s(x))
    assert other.weights_label == "vitpose_small.pth"


def test_load_safetensors_and_errors(vitpose_s, tmp_path):
    from safetensors.torch import save_file

    sd = _official_layout(vitpose_s)["state_dict"]
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "w.safetensors"))
    model = create_model("vitpose-s-simple")
    with pytest.raises(WeightsError, match="shape mismatch|unused|missing") as err:
        load_foreign_weights(model, tmp_path / "w.safetensors")  # classic head into the simple decoder
    assert "\n" not in str(err.value)
    bad = dict(sd)
    bad["backbone.extra.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="backbone.extra.weight"):
        load_foreign_weights(create_model("vitpose-s"), tmp_path / "bad.pth")
    with pytest.raises(WeightsError):
        load_foreign_weights(model, tmp_path / "missing.pth")


# ---------------------------------------------------------------------------------- transformers check
def _coco_crops(root, n: int = 3) -> torch.Tensor:
    ann = json.loads((root / "annotations" / "person_keypoints_val2017.json").read_text())
    files = {im["id"]: im["file_name"] for im in ann["images"]}
    people = [a for a in ann["annotations"] if a["num_keypoints"] >= 8 and not a.get("iscrowd")]
    people = sorted(people, key=lambda a: -a["area"])[:n]
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    crops = []
    for a in people:
        img = cv2.cvtColor(cv2.imread(str(root / "val2017" / files[a["image_id"]])), cv2.COLOR_BGR2RGB)
        x, y, w, h = a["bbox"]
        center, size = T.box_to_center_size(np.array([x, y, x + w, y + h]), 192 / 256)
        crop = T.warp_image(img, T.get_warp_matrix(center, size, (192, 256), udp=True), (192, 256))
        crops.append(((crop / 255.0 - mean) / std).transpose(2, 0, 1))
    return torch.tensor(np.stack(crops), dtype=torch.float32)


def _hf_model(hidden: int, heads: int, simple: bool):
    transformers = pytest.importorskip("transformers")
    backbone = transformers.VitPoseBackboneConfig(
        image_size=[256, 192], patch_size=[16, 16], hidden_size=hidden, num_hidden_layers=12,
        num_attention_heads=heads, mlp_ratio=4, qkv_bias=True, layer_norm_eps=1e-6, out_indices=[12])
    cfg = transformers.VitPoseConfig(backbone_config=backbone, use_simple_decoder=simple, num_labels=17)
    torch.manual_seed(0)
    model = transformers.VitPoseForPoseEstimation(cfg).eval()
    with torch.no_grad():  # non-trivial BN statistics and head so the comparison means something
        perturb_batchnorm(model.head)
    return model


@pytest.mark.parametrize("name,hidden,heads", [("vitpose-s", 384, 12), ("vitpose-b", 768, 12),
                                               pytest.param("vitpose-s-simple", 384, 12, marks=pytest.mark.slow)])
def test_matches_transformers_vitpose(coco_mini, tmp_path, name, hidden, heads):
    simple = name.endswith("simple")
    hf = _hf_model(hidden, heads, simple)
    path = tmp_path / "hf.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, str(path))
    ours = create_model(name)
    report = load_foreign_weights(ours, path)
    assert report["format"] == "hf-vitpose" and report["unused"] == [] and report["missing"] == []
    crops = _coco_crops(coco_mini, 2 if hidden > 400 else 3)
    with torch.no_grad():
        theirs = hf(pixel_values=crops).heatmaps
        mine = ours(crops)
    assert mine.shape == theirs.shape == (crops.shape[0], 17, 64, 48)
    assert theirs.abs().max() > 1e-2  # not a trivially tiny output
    assert (mine - theirs).abs().max() < 1e-4
    # same via the converter alone, with the flip test of both implementations
    conv, rep = convert_vitpose(hf.state_dict())
    assert rep["format"] == "hf-vitpose" and not rep["unused"] and len(conv) == len(ours.net.state_dict())
