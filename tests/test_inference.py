"""Inference preparation (core/models/inference.py): BN folding + CPU micro-batches give the plain network's
keypoints, and the original module stays trainable."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from kanpose_cli.core.models import create_model
from kanpose_cli.core.models.inference import InferenceNet, fuse_conv_bn, prepare_for_inference

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AMFACPOSE = ["amfacpose-r34", "amfacpose-r18", "amfacpose-r34-256x192", "amfacpose-r18-256x192",
             "amfacpose-r34-rkan"]
BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def _trained_like(name: str, seed: int = 0):
    """A model whose BatchNorms have non-trivial running statistics and affine parameters (random init has
    mean 0 / var 1 / γ 1 / β 0, which would hide folding mistakes)."""
    torch.manual_seed(seed)
    model = create_model(name).eval()
    for m in model.modules():
        if isinstance(m, BN):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


@pytest.mark.parametrize("name", AMFACPOSE)
def test_prepared_amfacpose_gives_the_same_keypoints(name):
    model = _trained_like(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepared = prepare_for_inference(model.net, model.input_size, "cpu")
    assert isinstance(prepared, InferenceNet) and prepared.auto_chunk and prepared.chunk is None
    assert prepared.fused > 0 and not any(isinstance(m, BN) for m in prepared.modules())
    torch.manual_seed(1)
    x = torch.randn(3, 3, *model.input_size)
    forced = InferenceNet(prepared.net, chunk=2)  # also exercise the micro-batch path (3 = 2 + 1)
    with torch.inference_mode():
        k0, s0 = model.predict(x)
        for net in (prepared, forced, InferenceNet(prepared.net, None)):
            k1, s1 = model.predict(x, net=net)
            assert (k1 - k0).abs().max().item() < 1e-3  # pixels of the crop
            assert (s1 - s0).abs().max().item() < 1e-4
    assert prepared.chunk >= 1 and prepared.sample_bytes > 2**20  # measured on the first batch of 3
    # The original network is untouched: same tensors, BN modules still there, still trainable.
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert any(isinstance(m, BN) for m in model.net.modules())
    assert all(p.requires_grad for p in model.net.parameters())


def test_real_crops_with_shipped_weights(coco_mini):
    from kanpose_cli.core.data.coco import CocoKeypointData
    from kanpose_cli.core.data.sources import read_image
    from kanpose_cli.core.inference.estimator import PoseEstimator

    data = CocoKeypointData(coco_mini / "annotations" / "person_keypoints_val2017.json", coco_mini / "val2017")
    est = PoseEstimator("amfacpose-r18-128x96", boxes="gt", annotations=data, batch=8, backend="torch")
    assert isinstance(est.pipeline.net, InferenceNet) and est.pipeline.net.fused > 0
    ids = data.image_ids[:4]
    images = [read_image(data.image(i).path) for i in ids]
    results = est.predict(images, [str(data.image(i).path) for i in ids], ids)
    plain = PoseEstimator(est.pose_model, boxes="gt", annotations=data, batch=8)
    plain.pipeline.net = est.pose_model.net  # the network as built, no preparation
    reference = plain.predict(images, [str(data.image(i).path) for i in ids], ids)
    assert sum(len(r) for r in results) > 0
    for a, b in zip(results, reference):
        assert a.keypoints.shape == b.keypoints.shape
        if not len(a):
            continue
        assert np.abs(a.keypoints - b.keypoints).max() < 1e-3  # original-image pixels
        assert np.abs(a.keypoint_scores - b.keypoint_scores).max() < 1e-4


def test_inference_copy_cannot_be_trained_and_original_can():
    model = _trained_like("amfacpose-r18-256x192")
    prepared = prepare_for_inference(model.net, model.input_size, "cpu")
    with pytest.raises(RuntimeError, match="cannot be trained"):
        prepared.train()
    prepared.eval()  # allowed
    assert all(not p.requires_grad for p in prepared.parameters())
    model.train()  # the original: BN in training mode, gradients flow
    xl, yl = model(torch.randn(2, 3, *model.input_size))
    (xl.mean() + yl.mean()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(RuntimeError, match="eval-mode"):
        fuse_conv_bn(model.net)


@pytest.mark.parametrize("name", ["vitpose-s", "flatpose-b"])
def test_other_families_unchanged_by_preparation(name):
    model = _trained_like(name)
    prepared = prepare_for_inference(model.net, model.input_size, "cpu")
    x = torch.randn(2, 3, *model.input_size)
    with torch.inference_mode():
        k0, _ = model.predict(x)
        k1, _ = model.predict(x, net=prepared)
    assert (k1 - k0).abs().max().item() < 1e-3


def test_non_torch_backends_pass_through():
    class Session(nn.Module):
        backend = "onnxruntime CPUExecutionProvider"

    net = Session()
    assert prepare_for_inference(net, (256, 192), "cpu") is net
