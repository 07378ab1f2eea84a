"""Object keypoint similarity (OKS), the one definition every part of kanpose uses.

Definition (COCO keypoint evaluation, https://cocodataset.org/#keypoints-eval; pycocotools
``COCOeval.computeOks``; mmpose ``evaluation/functional/keypoint_eval.py`` / ``nms.py::oks_iou``): for a predicted
and a reference keypoint ``d`` pixels apart,

    ks = exp(-d² / (2 · s² · (2σ)²))

with ``s² = area`` (the reference person's area in pixels², COCO's ``area`` field; the padded crop area for
OKS-NMS) and ``σ`` the keypoint's OKS sigma (COCO-17: :attr:`~kanpose_cli.core.keypoints.KeypointSet.sigmas`).
OKS is the mean of ``ks`` over the labelled keypoints of the reference (COCO visibility ``v > 0``).

The arithmetic follows pycocotools term by term (``d² / (2σ)² / (area + eps) / 2``), so the values equal
``computeOks``'s up to float rounding. (pycocotools scores a person without labelled keypoints by the distance to an
enlarged box; COCOeval ignores such persons, and here their OKS is 0.)

Users: the error diagnosis (:mod:`~kanpose_cli.core.evaluation.analysis`), OKS-NMS
(:mod:`~kanpose_cli.core.evaluation.oks_nms`) and the teacher fill-in matching of ``kanpose label``
(:mod:`~kanpose_cli.core.tasks.labeler`).
"""

from __future__ import annotations

import numpy as np


def keypoint_similarity(pred_xy: np.ndarray, gt_xy: np.ndarray, area, sigmas: np.ndarray) -> np.ndarray:
    """Per-keypoint OKS term ``ks = exp(-d² / (2 · area · (2σ)²))`` (pycocotools ``computeOks`` before the mean).

    Args:
        pred_xy: (..., K, 2) predicted keypoints, pixels of the original image, x before y.
        gt_xy: (..., K, 2) reference (ground-truth) keypoints, broadcast against ``pred_xy``.
        area: reference person area(s) in pixels², scalar or broadcastable to (..., K) (e.g. (G, 1)).
        sigmas: (K,) OKS sigmas.

    Returns:
        (..., K) float64 similarities in (0, 1]; 1 for an exact hit.
    """
    d2 = np.sum((np.asarray(pred_xy, float) - np.asarray(gt_xy, float)) ** 2, axis=-1)
    return np.exp(-d2 / (2.0 * np.asarray(sigmas, float)) ** 2 / (np.asarray(area, float) + np.spacing(1)) / 2.0)


def object_keypoint_similarity(pred_xy: np.ndarray, gt_xy: np.ndarray, area, sigmas: np.ndarray,
                               labelled: np.ndarray | None = None) -> np.ndarray:
    """OKS: the mean :func:`keypoint_similarity` over the labelled keypoints.

    Args:
        pred_xy: (..., K, 2) predicted keypoints, pixels of the original image, x before y.
        gt_xy: (..., K, 2) reference keypoints (broadcast against ``pred_xy``).
        area: reference area(s) in pixels², scalar or broadcastable to the instance shape ``(...)``.
        sigmas: (K,) OKS sigmas.
        labelled: (..., K) bool, the keypoints that count (COCO ``v > 0`` of the reference), or None for all.

    Returns:
        (...) float64 OKS in [0, 1]; 0 for an instance with no labelled keypoint (or K = 0).
    """
    ks = keypoint_similarity(pred_xy, gt_xy, np.asarray(area, float)[..., None], sigmas)
    if labelled is None:
        return ks.mean(axis=-1) if ks.shape[-1] else np.zeros(ks.shape[:-1])
    lab = np.broadcast_to(np.asarray(labelled, dtype=bool), ks.shape)
    n = lab.sum(axis=-1)
    return np.where(n > 0, (ks * lab).sum(axis=-1) / np.maximum(n, 1), 0.0)


def oks_matrix(pred_xy: np.ndarray, gt_xy: np.ndarray, gt_vis: np.ndarray, gt_areas: np.ndarray,
               sigmas: np.ndarray) -> np.ndarray:
    """OKS of every prediction with every ground-truth person (pycocotools ``computeOks`` for one image).

    Args:
        pred_xy: (D, K, 2) predictions (pixels, x before y). gt_xy: (G, K, 2) ground truth. gt_vis: (G, K) COCO
            visibility (> 0: labelled). gt_areas: (G,) pixels². sigmas: (K,).

    Returns:
        (D, G) OKS in [0, 1] (0 for a person with no labelled keypoint).
    """
    D, G = len(pred_xy), len(gt_xy)
    if D == 0 or G == 0:
        return np.zeros((D, G))
    return object_keypoint_similarity(np.asarray(pred_xy, float)[:, None], np.asarray(gt_xy, float)[None],
                                      np.asarray(gt_areas, float)[None, :], sigmas, (np.asarray(gt_vis) > 0)[None])
