"""Occlusion augmentation (RTMPose's CoarseDropout): rectangle sizes and positions, no draws when off, and through the
real dataset: the crop is blacked out inside the rectangles only, the keypoint targets do not change."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kanpose_cli.core.data.augment import AugmentConfig, apply_occlusions, draw_occlusions
from kanpose_cli.core.data.coco import load_coco_instances
from kanpose_cli.core.data.dataset import TopDownDataset
from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.models.registry import create_model

OFF = dict(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_range=(1.0, 1.0), rotate_prob=0.0)


def test_rectangles_lie_inside_the_crop_with_sides_in_range():
    cfg = AugmentConfig(occlusion_prob=1.0, occlusion_holes=2, occlusion_size=(0.2, 0.4))
    rng = np.random.default_rng(0)
    hs, ws = [], []
    for _ in range(500):
        boxes = draw_occlusions(rng, cfg, (128, 96))
        assert len(boxes) == 2
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 128
            hs.append((y1 - y0) / 128)
            ws.append((x1 - x0) / 96)
    hs, ws = np.array(hs), np.array(ws)
    # sides uniform on [0.2, 0.4] of the crop's side, up to rounding to whole pixels
    assert hs.min() >= 0.2 - 0.5 / 128 and hs.max() <= 0.4 + 0.5 / 128
    assert ws.min() >= 0.2 - 0.5 / 96 and ws.max() <= 0.4 + 0.5 / 96
    assert abs(hs.mean() - 0.3) < 0.01 and abs(ws.mean() - 0.3) < 0.01
    assert hs.max() - hs.min() > 0.18  # spread over the whole range, not a constant


def test_probability_is_honoured_and_off_draws_nothing():
    half = AugmentConfig(occlusion_prob=0.5)
    rng = np.random.default_rng(1)
    hit = sum(bool(draw_occlusions(rng, half, (128, 96))) for _ in range(2000))
    assert 900 < hit < 1100
    # off: the generator is not advanced, so existing runs' augmentation draws stay as they were
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    assert draw_occlusions(a, AugmentConfig(), (128, 96)) == []
    assert a.random() == b.random()


def test_apply_blacks_out_only_the_rectangles():
    crop = np.full((8, 6, 3), 200, np.uint8)
    out = apply_occlusions(crop, [(1, 2, 4, 5)])
    assert (out[2:5, 1:4] == 0).all()
    mask = np.ones((8, 6), bool)
    mask[2:5, 1:4] = False
    assert (out[mask] == 200).all()
    assert (crop == 200).all()  # the input is not modified
    assert apply_occlusions(crop, []) is crop


@pytest.mark.parametrize("size", [(0.0, 0.3), (0.5, 0.2), (0.3, 1.5)])
def test_bad_sizes_are_a_usage_error(size):
    with pytest.raises(UsageError, match="aug.occlusion_size"):
        AugmentConfig(occlusion_size=size)


def test_dataset_crop_is_occluded_and_targets_unchanged(coco_mini):
    inst = load_coco_instances(coco_mini / "annotations" / "person_keypoints_train2017.json", coco_mini / "train2017")
    model = create_model("amfacpose-r18-128x96")
    plain = TopDownDataset(inst, model, AugmentConfig(**OFF), seed=5)
    occluded = TopDownDataset(inst, model, AugmentConfig(**OFF, occlusion_prob=1.0), seed=5)
    zeroed_fractions = []
    for i in range(6):
        a, b = plain[i], occluded[i]
        for key in ("target_x", "target_y", "target_weight", "center", "roi"):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
        diff = (a["image"] != b["image"]).any(-1).numpy()
        assert diff.any()
        ys, xs = np.nonzero(diff)
        # every changed pixel is black and lies in one rectangle of 20-40 % of each side
        assert (b["image"].numpy()[diff] == 0).all()
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert 0.2 * 128 - 1 <= h <= 0.4 * 128 + 1 and 0.2 * 96 - 1 <= w <= 0.4 * 96 + 1
        zeroed_fractions.append(diff.mean())
    assert 0.03 < np.mean(zeroed_fractions) < 0.17


def test_options_reach_the_config_and_survive_a_round_trip():
    from kanpose_cli.core import training as T

    cfg = T.apply_overrides(T.TrainConfig.from_recipe("amfacpose-r18-128x96"),
                            ["aug.occlusion_prob=0.5", "aug.occlusion_size=[0.1,0.3]", "aug.occlusion_holes=2"])
    assert (cfg.aug.occlusion_prob, cfg.aug.occlusion_holes, cfg.aug.occlusion_size) == (0.5, 2, (0.1, 0.3))
    assert T.TrainConfig.from_dict(cfg.to_dict()).aug == cfg.aug
    assert T.TrainConfig.from_recipe("amfacpose-r18-128x96").aug.occlusion_prob == 0.0  # off unless asked
