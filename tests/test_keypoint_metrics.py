"""PCK, PCKh, AUC, EPE and NME (core/evaluation/keypoint_metrics.py) against hand computations on a few points.

Each test writes its arithmetic out; the definitions are mmpose's ``evaluation/functional/keypoint_eval.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kanpose_cli.core.evaluation import keypoint_metrics as km

# Two persons, three keypoints. Ground truth at the origin-ish; predictions offset by known amounts.
GT = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]],
               [[100.0, 100.0], [110.0, 100.0], [100.0, 110.0]]])
# person 0 offsets: (3, 4) -> 5 px, (0, 1) -> 1 px, (6, 8) -> 10 px
# person 1 offsets: (0, 0) -> 0 px, (12, 16) -> 20 px, (1, 0) -> 1 px
PRED = GT + np.array([[[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]],
                      [[0.0, 0.0], [12.0, 16.0], [1.0, 0.0]]])
ALL = np.ones((2, 3), bool)


def test_pck_with_box_normaliser_matches_hand_computation():
    # boxes: person 0 is 40 wide, 50 high -> size max(40, 50) = 50; person 1 is 100 x 20 -> 100
    boxes = np.array([[0, 0, 40, 50], [100, 100, 200, 120]])
    size = km.box_size(boxes)
    assert size.tolist() == [50.0, 100.0]
    # normalised distances: person 0: 5/50 = 0.1, 1/50 = 0.02, 10/50 = 0.2; person 1: 0, 20/100 = 0.2, 0.01
    # at α = 0.2 (strict <): person 0: yes, yes, no; person 1: yes, no, yes
    # per keypoint: k0 2/2 = 1.0, k1 1/2 = 0.5, k2 1/2 = 0.5; mean (mmpose avg_acc) = 2/3; overall = 4/6
    r = km.pck(PRED, GT, ALL, size, 0.2)
    np.testing.assert_allclose(r.per_keypoint, [1.0, 0.5, 0.5])
    assert r.counts.tolist() == [2, 2, 2]
    assert r.mean == pytest.approx(2 / 3, abs=1e-12)
    assert r.overall == pytest.approx(4 / 6, abs=1e-12)
    # at α = 0.21 the two distances of exactly 0.2 become correct: 6/6
    assert km.pck(PRED, GT, ALL, size, 0.21).overall == 1.0


def test_pck_mask_leaves_unlabelled_keypoints_out():
    # mask out person 1's keypoint 1 (the 20 px error): k1 is scored once (person 0: 0.02 < 0.2 -> correct)
    mask = ALL.copy()
    mask[1, 1] = False
    r = km.pck(PRED, GT, mask, np.array([50.0, 100.0]), 0.2)
    np.testing.assert_allclose(r.per_keypoint, [1.0, 1.0, 0.5])
    assert r.counts.tolist() == [2, 1, 2]
    # mean over keypoints (1 + 1 + 0.5) / 3 = 0.8333…; overall over the 5 scored: 4 / 5 = 0.8
    assert r.mean == pytest.approx(2.5 / 3, abs=1e-12)
    assert r.overall == pytest.approx(0.8, abs=1e-12)
    assert r.scored == 5


def test_all_keypoints_unlabelled_give_nan_not_zero():
    r = km.pck(PRED, GT, np.zeros((2, 3), bool), 50.0, 0.2)
    assert np.isnan(r.per_keypoint).all() and r.counts.tolist() == [0, 0, 0]
    assert math.isnan(r.mean) and math.isnan(r.overall)
    assert math.isnan(km.auc(PRED, GT, np.zeros((2, 3), bool), 50.0))
    assert math.isnan(km.epe(PRED, GT, np.zeros((2, 3), bool)).overall)
    d = r.to_dict(["a", "b", "c"])
    assert d["mean"] is None and d["per_keypoint"] == {"a": None, "b": None, "c": None}


def test_zero_or_negative_normaliser_leaves_the_person_out():
    # person 0's normaliser is 0 -> only person 1 is scored: distances 0, 0.2, 0.01 at norm 100 -> 1, 0, 1
    r = km.pck(PRED, GT, ALL, np.array([0.0, 100.0]), 0.2)
    np.testing.assert_allclose(r.per_keypoint, [1.0, 0.0, 1.0])
    assert r.counts.tolist() == [1, 1, 1]
    # a negative one too (mmpose would turn it into 1e6 and call every keypoint correct)
    r = km.pck(PRED, GT, ALL, np.array([-5.0, 100.0]), 0.2)
    assert r.counts.tolist() == [1, 1, 1] and r.overall == pytest.approx(2 / 3, abs=1e-12)
    # both zero: nothing scored
    assert math.isnan(km.pck(PRED, GT, ALL, 0.0, 0.2).mean)


def test_missed_prediction_counts_as_wrong():
    pred = PRED.copy()
    pred[0, 0] = np.nan  # person 0 keypoint 0 was not predicted (5 px before, a hit)
    r = km.pck(pred, GT, ALL, np.array([50.0, 100.0]), 0.2)
    # k0: person 0 miss, person 1 hit -> 0.5; k1 0.5; k2 0.5; overall 3 / 6
    np.testing.assert_allclose(r.per_keypoint, [0.5, 0.5, 0.5])
    assert r.overall == pytest.approx(0.5, abs=1e-12)
    assert math.isinf(km.epe(pred, GT, ALL).overall)


def test_torso_normaliser_and_pckh():
    # torso between keypoints 1 and 2: person 0 ‖(10,0) − (0,10)‖ = √200 = 14.142…, person 1 the same
    t = km.torso_size(GT, ALL, 1, 2)
    np.testing.assert_allclose(t, [math.sqrt(200), math.sqrt(200)])
    # an unlabelled end gives 0 (person not scored)
    mask = ALL.copy()
    mask[1, 2] = False
    assert km.torso_size(GT, mask, 1, 2).tolist()[1] == 0.0
    # tPCK@0.5: threshold 0.5 · 14.142 = 7.07 px; person 0 errors 5, 1, 10 -> 1, 1, 0; person 1 0, 20, 1 -> 1, 0, 1
    r = km.pck(PRED, GT, ALL, t, 0.5)
    assert r.overall == pytest.approx(4 / 6, abs=1e-12)
    # head size from a head box (x1, y1, x2, y2) = (0, 0, 30, 40): diagonal 50, × 0.6 = 30 px
    hs = km.head_size_from_box([[0, 0, 30, 40], [10, 10, 10, 60]])  # second: diagonal ‖(0, 50)‖ = 50 -> 30
    np.testing.assert_allclose(hs, [30.0, 30.0])
    np.testing.assert_allclose(km.head_size_from_box([[[0, 0], [30, 40]]]), [30.0])  # MPII's [[x1, y1], [x2, y2]]
    # head segment from joints 0 and 1 (head top, neck): person 0 ‖(0,0) − (10,0)‖ = 10
    np.testing.assert_allclose(km.head_size_from_joints(GT, ALL, 0, 1), [10.0, 10.0])
    # PCKh@0.5 with head size 30: threshold 15 px; person 0: 5, 1, 10 -> 3 hits; person 1: 0, 20, 1 -> 2 hits; 5/6
    r = km.pckh(PRED, GT, ALL, hs)
    assert r.overall == pytest.approx(5 / 6, abs=1e-12)
    np.testing.assert_allclose(r.per_keypoint, [1.0, 0.5, 1.0])


def test_auc_is_the_mean_of_pck_over_thresholds():
    # norm 20 px, T = 4 thresholds 0, 0.25, 0.5, 0.75 (strict <)
    # normalised distances: person 0: 0.25, 0.05, 0.5; person 1: 0, 1.0, 0.05
    # α = 0:    none (0 < 0 is false)                         -> per kpt 0, 0, 0       -> mean 0
    # α = 0.25: 0.05, 0, 0.05 (0.25 is not < 0.25)            -> k0 1/2, k1 1/2, k2 1/2 -> mean 0.5
    # α = 0.5:  0.25, 0.05, 0, 0.05                           -> k0 2/2, k1 1/2, k2 1/2 -> mean 2/3
    # α = 0.75: + 0.5                                          -> k0 1, k1 1/2, k2 1     -> mean 5/6
    # AUC = (0 + 0.5 + 2/3 + 5/6) / 4 = 2/4 = 0.5
    assert km.auc(PRED, GT, ALL, 20.0, num_thrs=4) == pytest.approx(0.5, abs=1e-12)
    # mmpose's default T = 20 on the same data equals the mean of pck(...).mean at i / 20
    expected = np.mean([km.pck(PRED, GT, ALL, 20.0, i / 20).mean for i in range(20)])
    assert km.auc(PRED, GT, ALL, 20.0) == pytest.approx(expected, abs=1e-12)


def test_epe_is_the_mean_pixel_distance_over_labelled_keypoints():
    # distances 5, 1, 10, 0, 20, 1 -> mean 37 / 6; per keypoint (5+0)/2, (1+20)/2, (10+1)/2
    r = km.epe(PRED, GT, ALL)
    assert r.overall == pytest.approx(37 / 6, abs=1e-12)
    np.testing.assert_allclose(r.per_keypoint, [2.5, 10.5, 5.5])
    # leave out the 20 px keypoint: 17 / 5
    mask = ALL.copy()
    mask[1, 1] = False
    assert km.epe(PRED, GT, mask).overall == pytest.approx(17 / 5, abs=1e-12)


def test_nme_with_interocular_normaliser():
    # eyes at keypoints 1 and 2: ‖(10,0) − (0,10)‖ = √200 for both persons
    iod = km.interocular(GT, 1, 2)
    np.testing.assert_allclose(iod, [math.sqrt(200)] * 2)
    # NME = mean(5, 1, 10, 0, 20, 1) / √200 = (37 / 6) / 14.1421…
    assert km.nme(PRED, GT, ALL, iod).overall == pytest.approx(37 / 6 / math.sqrt(200), abs=1e-12)
    # a face whose eye corners coincide (normaliser 0) is not scored: only person 1, (0 + 20 + 1) / 3 / √200
    assert km.nme(PRED, GT, ALL, np.array([0.0, math.sqrt(200)])).overall == pytest.approx(
        7 / math.sqrt(200), abs=1e-12)
    assert km.WFLW_OUTER_EYE_CORNERS == (60, 72)


def test_mmpose_style_two_column_normaliser_and_shape_errors():
    size = np.array([[50.0, 50.0], [100.0, 100.0]])
    assert km.pck(PRED, GT, ALL, size, 0.2).overall == pytest.approx(4 / 6, abs=1e-12)
    with pytest.raises(ValueError, match="equal columns"):
        km.pck(PRED, GT, ALL, np.array([[50.0, 40.0], [1.0, 1.0]]), 0.2)
    with pytest.raises(ValueError, match="must match"):
        km.pck(PRED[:1], GT, ALL, 50.0, 0.2)
    with pytest.raises(ValueError, match="mask"):
        km.pck(PRED, GT, ALL[:, :2], 50.0, 0.2)
