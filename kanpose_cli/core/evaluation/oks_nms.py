"""OKS-based non-maximum suppression of pose instances (the top-down evaluation protocol, spec §1.5).

Reference: ViTPose / mmpose 0.x ``mmpose/core/post_processing/nms.py::oks_iou, oks_nms`` and mmpose 1.x
``mmpose/evaluation/functional/nms.py`` (called from ``CocoMetric`` with ``nms_mode='oks_nms'``, ``nms_thr=0.9``,
no visibility threshold).
"""

from __future__ import annotations

import numpy as np


def oks_iou(ref: np.ndarray, others: np.ndarray, area_ref: float, areas: np.ndarray, sigmas: np.ndarray,
            vis_thr: float | None = None) -> np.ndarray:
    """Object keypoint similarity between one instance and several others.

    Args:
        ref: (K, 3) keypoints ``x, y, score`` of the reference instance (original-image pixels).
        others: (M, K, 3) the other instances.
        area_ref: reference area in pixels² (for NMS: the padded crop area ``w_roi · h_roi``).
        areas: (M,) areas of the others.
        sigmas: (K,) COCO OKS sigmas.
        vis_thr: if set, only keypoints whose score in ``others`` is above it count (mmpose's quirk:
            ``list(a) and list(b)`` selects by the second instance only).

    Returns:
        (M,) float32 OKS values in [0, 1]; ``OKS = mean_k exp(-d_k² / (2 · (A_ref + A_m)/2 · (2σ_k)²))``.
    """
    others = np.asarray(others, dtype=np.float64).reshape(-1, *np.shape(ref))
    variances = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    d2 = ((others[..., :2] - np.asarray(ref, dtype=np.float64)[None, :, :2]) ** 2).sum(-1)  # (M, K)
    scale = (area_ref + np.asarray(areas, dtype=np.float64))[:, None] / 2.0 + np.spacing(1)
    e = d2 / variances[None, :] / scale / 2.0
    sim = np.exp(-e)
    if vis_thr is None:
        return sim.mean(axis=1).astype(np.float32) if sim.shape[1] else np.zeros(len(others), np.float32)
    mask = others[..., 2] > vis_thr
    counts = mask.sum(axis=1)
    total = (sim * mask).sum(axis=1)
    return np.where(counts > 0, total / np.maximum(counts, 1), 0.0).astype(np.float32)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, thr: float = 0.9,
            sigmas: np.ndarray | None = None, vis_thr: float | None = None) -> list[int]:
    """Greedy OKS-NMS over the instances of one image.

    Args:
        keypoints: (N, K, 3) ``x, y, score`` in original-image pixels.
        scores: (N,) instance scores (after rescoring); candidates are visited from the highest.
        areas: (N,) instance areas in pixels² (the padded crop area in the top-down protocol).
        thr: an instance is dropped if its OKS with a kept, higher-scored one is above ``thr`` (0.9).
        sigmas: (K,) OKS sigmas (default COCO-17).

    Returns:
        Indices of the kept instances, highest score first.
    """
    if sigmas is None:
        from kanpose_cli.core.keypoints import COCO17

        sigmas = COCO17.sigmas_array()
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if len(keypoints) == 0:
        return []
    order = np.argsort(np.asarray(scores))[::-1]
    areas = np.asarray(areas, dtype=np.float64)
    keep = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        oks = oks_iou(keypoints[i], keypoints[rest], areas[i], areas[rest], sigmas, vis_thr)
        order = rest[oks <= thr]
    return keep
