"""One OKS (core/evaluation/oks.py), one COCOeval wrapper (core/evaluation/coco_metric.py) and the max-weight
assignment of the error diagnosis (scipy), checked by hand and against pycocotools on real coco-mini persons."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools

import numpy as np
import pytest

from kanpose_cli.core.data.coco import CocoKeypointData, quiet_coco
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.evaluation import analysis as A
from kanpose_cli.core.evaluation.coco_metric import METRIC_NAMES, check_results, score_results
from kanpose_cli.core.evaluation.oks import keypoint_similarity, object_keypoint_similarity, oks_matrix
from kanpose_cli.core.evaluation.oks_nms import oks_iou
from kanpose_cli.core.keypoints import COCO17

ANN = "annotations/person_keypoints_val2017.json"


# ------------------------------------------------------------------------------------------------ OKS by hand
def test_oks_by_hand():
    """exp(-d² / (2 · area · (2σ)²)) per keypoint, mean over the labelled ones."""
    gt = np.array([[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]])
    pred = gt + np.array([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]])  # d = 5, 0, 10 px
    sigmas, area = np.array([0.1, 0.2, 0.05]), 400.0
    ks = keypoint_similarity(pred, gt, area, sigmas)
    hand = [np.exp(-25 / (2 * 400 * 0.2**2)), 1.0, np.exp(-100 / (2 * 400 * 0.1**2))]  # 0.4578, 1, 3.7e-6
    np.testing.assert_allclose(ks, hand, rtol=1e-12)
    assert object_keypoint_similarity(pred, gt, area, sigmas) == pytest.approx(np.mean(hand), rel=1e-12)
    labelled = np.array([True, False, True])
    assert object_keypoint_similarity(pred, gt, area, sigmas, labelled) == pytest.approx((hand[0] + hand[2]) / 2)
    assert object_keypoint_similarity(pred, gt, area, sigmas, np.zeros(3, bool)) == 0.0
    # broadcasting: (D, 1, K, 2) against (1, G, K, 2) with (1, G) areas
    both = object_keypoint_similarity(pred[None, None], np.stack([gt, pred])[None], np.array([[area, 1.0]]), sigmas)
    assert both.shape == (1, 2) and both[0, 0] == pytest.approx(np.mean(hand)) and both[0, 1] == 1.0


def test_oks_nms_similarity_uses_the_mean_area_and_the_same_oks():
    """mmpose oks_iou: s² = (area_ref + area_other) / 2; optional score threshold on the other instance."""
    rng = np.random.default_rng(2)
    ref = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], 1)
    other = ref.copy()
    other[:, :2] += rng.normal(0, 3, (17, 2))
    other[:5, 2] = 0.1
    sig = COCO17.sigmas_array()
    got = oks_iou(ref, other[None], 900.0, np.array([1100.0]), sig)
    assert got[0] == pytest.approx(object_keypoint_similarity(other[:, :2], ref[:, :2], 1000.0, sig), rel=1e-6)
    got = oks_iou(ref, other[None], 900.0, np.array([1100.0]), sig, vis_thr=0.2)
    d2 = ((other[5:, :2] - ref[5:, :2]) ** 2).sum(1)
    hand = np.mean(np.exp(-d2 / (2 * 1000.0 * (2 * sig[5:]) ** 2)))
    assert got[0] == pytest.approx(hand, rel=1e-6)


def test_oks_equals_pycocotools_compute_oks_on_real_persons(coco_mini):
    from pycocotools.cocoeval import COCOeval

    coco = quiet_coco(str(coco_mini / ANN))
    img = 217285  # 13 labelled persons and a crowd region
    anns = [a for a in coco.imgToAnns[img] if not a["iscrowd"] and a["num_keypoints"] > 0]
    rng = np.random.default_rng(5)
    dets = []
    for n, a in enumerate(anns[:6]):
        kp = np.array(a["keypoints"], float).reshape(17, 3)
        kp[:, :2] += rng.normal(0, 2 + 2 * n, (17, 2))
        kp[:, 2] = 1.0
        dets.append({"image_id": img, "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": 1 - 0.1 * n})
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes([dict(d) for d in dets]), "keypoints")
        ev.params.imgIds = [img]
        ev._prepare()
        theirs = ev.computeOks(img, 1)  # (D, G) with detections by score (already sorted) and ev._gts order
    gts = ev._gts[img, 1]
    keep = [j for j, g in enumerate(gts) if not g["iscrowd"] and g["num_keypoints"] > 0]
    g_kp = np.array([gts[j]["keypoints"] for j in keep], float).reshape(len(keep), 17, 3)
    pred = np.array([d["keypoints"] for d in dets], float).reshape(len(dets), 17, 3)[..., :2]
    areas = np.array([gts[j]["area"] for j in keep])
    ours = oks_matrix(pred, g_kp[..., :2], g_kp[..., 2], areas, COCO17.sigmas_array())
    np.testing.assert_allclose(ours, theirs[:, keep], rtol=1e-12, atol=1e-15)
    assert 0.05 < ours[5].max() < ours[0].max() < 1.0  # the noisier detections score lower: a real spread
    one = object_keypoint_similarity(pred[2], g_kp[2, :, :2], gts[keep[2]]["area"], COCO17.sigmas_array(),
                                     g_kp[2, :, 2] > 0)
    assert one == pytest.approx(theirs[2, keep[2]], rel=1e-12)


# ------------------------------------------------------------------------------------------------ COCOeval wrapper
def _noisy_gt(coco_mini, seed=0, px=6.0) -> list[dict]:
    res = CocoKeypointData(coco_mini / ANN).gt_as_results()
    rng = np.random.default_rng(seed)
    for r in res:
        kp = np.array(r["keypoints"], float).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, px, (len(kp), 2))
        r["keypoints"], r["score"] = kp.reshape(-1).tolist(), float(rng.uniform())
    return res


def test_score_results_equals_plain_pycocotools_and_uses_the_keypoint_set_sigmas(coco_mini):
    from pycocotools.cocoeval import COCOeval

    coco = quiet_coco(str(coco_mini / ANN))
    res = _noisy_gt(coco_mini)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes([dict(r) for r in res]), "keypoints")  # pycocotools' built-in sigmas
        ev.params.imgIds = sorted(coco.getImgIds())
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = score_results(coco, res)
    assert {k: ours[k] for k in METRIC_NAMES} == dict(zip(METRIC_NAMES, map(float, ev.stats)))
    assert 0.2 < ours["AP"] < 0.8
    wide = dataclasses.replace(COCO17, sigmas=tuple(2 * s for s in COCO17.sigmas))
    assert score_results(coco, res, keypoint_set=wide)["AP"] > ours["AP"] + 0.1  # sigmas really reach COCOeval


def test_result_checks_live_in_one_place(coco_mini):
    coco = quiet_coco(str(coco_mini / ANN))
    ok = {"image_id": coco.getImgIds()[0], "category_id": 1, "keypoints": [1.0, 2.0, 1.0] * 17, "score": 1.0}
    check_results(coco, [ok])
    with pytest.raises(InputError, match=r"1 image id\(s\) not in the annotation file \(e.g. 1\)"):
        check_results(coco, [dict(ok, image_id=1)])
    with pytest.raises(InputError, match="results have 14 keypoints per instance.*17 COCO keypoints"):
        check_results(coco, [dict(ok, keypoints=[1.0, 2.0, 1.0] * 14)])
    lsp = dataclasses.replace(COCO17, name="lsp14", sigmas=COCO17.sigmas[:14], names=COCO17.names[:14])
    with pytest.raises(InputError, match="annotations have 17 keypoints per person; the lsp14 OKS sigmas are for 14"):
        check_results(coco, [ok], lsp)
    # the same checks guard the error analysis
    with pytest.raises(InputError, match="17 COCO keypoints"):
        A.analyze(coco, [dict(ok, keypoints=[1.0, 2.0, 1.0] * 14)])


# ------------------------------------------------------------------------------------------------ assignment
def _brute_best(w: np.ndarray) -> float:
    R, C = w.shape
    if R <= C:
        return max(sum(w[i, j] for i, j in zip(range(R), p)) for p in itertools.permutations(range(C), R))
    return max(sum(w[i, j] for j, i in zip(range(C), p)) for p in itertools.permutations(range(R), C))


@pytest.mark.parametrize("w", [
    np.array([[0.9, 0.8], [0.85, 0.1]]),  # greedy takes 0.9 + 0.1; the optimum is 0.8 + 0.85
    np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]),  # all tied, rectangular (2 × 3)
    np.array([[0.7, 0.0], [0.7, 0.0], [0.0, 0.0]]),  # tie for one column, zero weights, 3 × 2
    np.array([[0.0, 0.0, 0.0]]),  # nothing overlaps: still one pair (coco-analyze assigns it score 0)
    np.array([[0.2, 0.9, 0.4, 0.1], [0.3, 0.8, 0.1, 0.0], [0.6, 0.2, 0.7, 0.5]]),
])
def test_max_weight_assignment(w):
    pairs = A.max_weight_assignment(w)
    assert len(pairs) == min(w.shape) and pairs == sorted(pairs)
    assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
    assert sum(w[r, c] for r, c in pairs) == pytest.approx(_brute_best(w))
    if w.shape == (2, 2):
        assert pairs == [(0, 1), (1, 0)]


def test_max_weight_assignment_empty():
    assert A.max_weight_assignment(np.zeros((0, 3))) == [] and A.max_weight_assignment(np.zeros((2, 0))) == []
