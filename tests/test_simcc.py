"""SimCC codec and KLDiscretLoss invariants (spec §5, §10)."""

import numpy as np
import torch

from kanpose_cli.core.codecs import SimCCCodec, build_codec
from kanpose_cli.core.keypoints import COCO17
from kanpose_cli.core.models.losses import KLDiscretLoss


def _codec(**kw):
    return SimCCCodec((256, 192), split_ratio=2.0, **kw)


def test_bins_and_config_round_trip():
    c = _codec(label="gaussian", sigma=(4.9, 5.66), normalize=False, beta=10.0)
    assert c.num_bins == (384, 512)
    assert build_codec(c.config(), (256, 192)).config() == c.config()


def test_invisible_and_far_outside_keypoints_get_zero_weight():
    c = _codec()
    kpts = np.array([[50.0, 60.0], [50.0, 60.0], [-100.0, 60.0]] + [[10.0, 10.0]] * 14)
    vis = np.array([1.0, 0.0, 1.0] + [1.0] * 14)
    t = c.encode(kpts, vis)
    assert t["target_weight"][:3].tolist() == [1.0, 0.0, 0.0]
    assert t["target_x"][1].sum() == 0 and t["target_y"][2].sum() == 0


def test_integer_bins_decode_exactly_with_argmax():
    c = _codec(label="smoothed_onehot", label_smoothing=0.1, decode="argmax")
    kpts = np.stack([np.arange(17) * 10.0 + 5.0, np.arange(17) * 12.0 + 3.5], axis=1)
    t = c.encode(kpts, np.ones(17))
    logits = [torch.from_numpy(np.log(t[k]))[None] for k in ("target_x", "target_y")]
    dec, _ = c.decode(logits)
    assert np.allclose(dec[0].numpy(), kpts)


def test_flip_back_with_one_bin_shift_recovers_unflipped_peak():
    """A synthetic peak at x in the crop, mirrored (x -> W-1-x), flipped back lands on the same bin."""
    c = _codec(label="gaussian", sigma=3.0)
    W = 192
    kpts = np.random.default_rng(1).uniform(20, 170, size=(17, 2))
    mirrored = kpts.copy()
    mirrored[:, 0] = W - 1 - kpts[:, 0]
    mirrored = mirrored[list(COCO17.flip_index)]  # the left wrist of the mirror is the right wrist of the original
    t = c.encode(mirrored, np.ones(17))
    logits = tuple(torch.from_numpy(np.log(t[k] + 1e-30))[None] for k in ("target_x", "target_y"))
    back = c.flip_back(logits, COCO17.flip_index)
    dec, _ = c.decode(back)
    assert np.abs(dec[0].numpy() - kpts).max() < 0.01
    assert (dec[0, :, 0].numpy().round(0) == kpts[:, 0].round(0)).mean() > 0.9


def test_kl_loss_is_zero_for_perfect_logits_and_positive_otherwise():
    c = _codec(label="gaussian", sigma=6.0)
    t = c.encode(np.full((17, 2), 80.0), np.ones(17))
    tx, ty = (torch.from_numpy(t[k] / t[k].sum(-1, keepdims=True))[None] for k in ("target_x", "target_y"))
    targets = {"target_x": tx, "target_y": ty, "target_weight": torch.ones(1, 17)}
    loss = KLDiscretLoss(beta=1.0)
    assert loss(((tx + 1e-30).log(), (ty + 1e-30).log()), targets).item() < 1e-6
    assert loss((torch.zeros_like(tx), torch.zeros_like(ty)), targets).item() > 1e-3
    targets["target_weight"] = torch.zeros(1, 17)
    assert loss((torch.zeros_like(tx), torch.zeros_like(ty)), targets).item() == 0.0


def test_scores_are_one_for_perfect_and_low_for_flat_predictions():
    c = _codec(label="smoothed_onehot", label_smoothing=0.1, beta=10.0)
    t = c.encode(np.full((17, 2), 80.25), np.ones(17))
    perfect = tuple(torch.from_numpy(np.log(t[k]) / 10.0)[None] for k in ("target_x", "target_y"))
    _, s = c.decode(perfect)
    assert torch.allclose(s, torch.ones_like(s), atol=1e-4)
    _, s = c.decode((torch.zeros(1, 17, 384), torch.zeros(1, 17, 512)))
    assert s.max() < 0.05
