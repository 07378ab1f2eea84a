"""Top-down geometry and the full crop -> SimCC -> inverse-warp round trip on real COCO keypoints."""

import json

import numpy as np
import pytest

from kanpose_cli.core.codecs import SimCCCodec
from kanpose_cli.core.data.transforms import (box_to_center_size, crop_to_image, get_warp_matrix, invert_warp,
                                              transform_points)
from kanpose_cli.core.keypoints import COCO17


def test_keypoint_metadata_is_consistent():
    fi = np.array(COCO17.flip_index)
    assert (fi[fi] == np.arange(17)).all()  # involution
    assert len(COCO17.sigmas) == 17 and len(COCO17.skeleton) == 19
    for i, name in enumerate(COCO17.names):
        mirrored = COCO17.names[fi[i]]
        assert mirrored == name.replace("left", "@").replace("right", "left").replace("@", "right")


def test_box_to_center_size_expands_to_aspect_and_pads():
    c, s = box_to_center_size(np.array([10.0, 20.0, 110.0, 420.0]), aspect_ratio=0.75, padding=1.25)
    assert np.allclose(c, [60.0, 220.0])
    assert np.allclose(s, [300.0 * 1.25, 400.0 * 1.25])  # width grown to 0.75 * 400
    c, s = box_to_center_size(np.array([0.0, 0.0, 300.0, 100.0]), aspect_ratio=0.75, padding=1.0)
    assert np.allclose(s, [300.0, 400.0])  # height grown to 300 / 0.75


@pytest.mark.parametrize("udp", [True, False])
@pytest.mark.parametrize("rotation", [0.0, 30.0])
def test_warp_matrix_inverse_is_exact(udp, rotation):
    m = get_warp_matrix(np.array([320.5, 240.25]), np.array([150.0, 200.0]), (192, 256), rotation, udp)
    pts = np.random.default_rng(0).uniform(0, 640, size=(50, 2))
    back = transform_points(transform_points(pts, m), invert_warp(m))
    assert np.abs(back - pts).max() < 1e-9
    if rotation == 0:
        crop = transform_points(pts, m)
        closed_form = crop_to_image(crop[None], np.array([[320.5, 240.25]]), np.array([[150.0, 200.0]]),
                                    (192, 256), udp)
        assert np.abs(closed_form[0] - pts).max() < 1e-9


def test_udp_maps_roi_borders_to_crop_pixel_centres():
    m = get_warp_matrix(np.array([100.0, 100.0]), np.array([60.0, 80.0]), (192, 256), udp=True)
    corners = transform_points(np.array([[70.0, 60.0], [130.0, 140.0]]), m)
    assert np.allclose(corners, [[0.0, 0.0], [191.0, 255.0]])


def _annotated_keypoints(coco_mini):
    for split in ("val2017", "train2017"):
        data = json.loads((coco_mini / "annotations" / f"person_keypoints_{split}.json").read_text())
        for ann in data["annotations"]:
            if ann.get("num_keypoints", 0) == 0:
                continue
            k = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
            x, y, w, h = ann["bbox"]
            yield np.array([x, y, x + w, y + h]), k[:, :2], k[:, 2] > 0


@pytest.mark.parametrize("label", ["gaussian", "smoothed_onehot"])
@pytest.mark.parametrize("input_size", [(256, 192), (384, 288), (256, 256)])
def test_round_trip_of_every_coco_mini_keypoint(coco_mini, label, input_size):
    """crop -> SimCC encode -> decode -> inverse warp lands within 0.5 px of the annotation (k = 2)."""
    H, W = input_size
    codec = SimCCCodec(input_size, split_ratio=2.0, label=label, sigma=6.0, label_smoothing=0.1, beta=1.0)
    worst, count, total = 0.0, 0, 0
    for box, kpts, vis in _annotated_keypoints(coco_mini):
        total += int(vis.sum())
        center, size = box_to_center_size(box, W / H)
        m = get_warp_matrix(center, size, (W, H), udp=True)
        crop_pts = transform_points(kpts, m)
        targets = codec.encode(crop_pts, vis.astype(float))
        inside = (crop_pts >= 0).all(axis=1) & (crop_pts[:, 0] <= W - 1) & (crop_pts[:, 1] <= H - 1)
        # Decode the labels as if a perfect network produced them (logits = log of the label).
        import torch

        logits = [torch.from_numpy(np.log(targets[k] + 1e-30))[None] for k in ("target_x", "target_y")]
        dec, scores = codec.decode(logits)
        back = crop_to_image(dec.numpy().astype(np.float64), center[None], size[None], (W, H), udp=True)[0]
        err = np.linalg.norm(back - kpts, axis=1)[vis & inside]
        assert np.allclose(scores.numpy()[0][vis & inside], 1.0, atol=1e-3)
        worst = max(worst, float(err.max(initial=0.0)))
        count += int((vis & inside).sum())
    # Every labelled keypoint of coco-mini (val + train: 1,452) that lies inside its person crop; the crop has no
    # bins for the few (13–19) labelled outside the padded GT box.
    assert total == 1452
    assert count >= 1430  # 1,433–1,439 depending on the crop aspect ratio
    assert worst < 0.5, f"worst round-trip error {worst:.3f} px"
