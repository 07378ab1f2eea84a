"""OKS-based non-maximum suppression of pose instances (the top-down evaluation protocol, spec §1.5).

Reference: ViTPose / mmpose 0.x ``mmpose/core/post_processing/nms.py::oks_iou, oks_nms`` and mmpose 1.x
``mmpose/evaluation/functional/nms.py`` (called from ``CocoMetric`` with ``nms_mode='oks_nms'``, ``nms_thr=0.9``,
no visibility threshold). The OKS itself is :mod:`kanpose_cli.core.evaluation.oks`.
"""

from __future__ import annotations

import numpy as np

from kanpose_cli.core.evaluation.oks import object_keypoint_similarity
from kanpose_cli.core.protocol import OKS_NMS_THR


def oks_iou(ref: np.ndarray, others: np.ndarray, area_ref: float, areas: np.ndarray, sigmas: np.ndarray,
            vis_thr: float | None = None) -> np.ndarray:
    """Object keypoint similarity between one instance and several others (mmpose ``oks_iou``).

    Args:
        ref: (K, 3) keypoints ``x, y, score`` of the reference instance (original-image pixels).
        others: (M, K, 3) the other instances.
        area_ref: reference area in pixels² (for NMS: the padded crop area ``w_roi · h_roi``).
        areas: (M,) areas of the others.
        sigmas: (K,) OKS sigmas.
        vis_thr: if set, only keypoints whose score in ``others`` is above it count (mmpose's quirk:
            ``list(a) and list(b)`` selects by the second instance only).

    Returns:
        (M,) float32 OKS values in [0, 1], with the mean of the two areas as ``s²``:
        ``OKS = mean_k exp(-d_k² / (2 · (A_ref + A_m)/2 · (2σ_k)²))``.
    """
    others = np.asarray(others, dtype=np.float64).reshape(-1, *np.shape(ref))
    ref = np.asarray(ref, dtype=np.float64)
    scale = (area_ref + np.asarray(areas, dtype=np.float64)) / 2.0
    labelled = None if vis_thr is None else others[..., 2] > vis_thr
    return object_keypoint_similarity(others[..., :2], ref[None, :, :2], scale, sigmas, labelled).astype(np.float32)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, thr: float = OKS_NMS_THR, *,
            sigmas: np.ndarray, vis_thr: float | None = None) -> list[int]:
    """Greedy OKS-NMS over the instances of one image.

    Args:
        keypoints: (N, K, 3) ``x, y, score`` in original-image pixels.
        scores: (N,) instance scores (after rescoring); candidates are visited from the highest.
        areas: (N,) instance areas in pixels² (the padded crop area in the top-down protocol).
        thr: an instance is dropped if its OKS with a kept, higher-scored one is above ``thr``
            (:data:`~kanpose_cli.core.protocol.OKS_NMS_THR`, 0.9).
        sigmas: (K,) OKS sigmas of the instances' keypoint set (``KeypointSet.sigmas_array()``); no default, so
            a set other than COCO-17 is never suppressed with COCO's sigmas.

    Returns:
        Indices of the kept instances, highest score first.

    Raises:
        ValueError: ``sigmas`` does not have one entry per keypoint.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if keypoints.ndim == 3 and sigmas.shape != (keypoints.shape[1],):
        raise ValueError(f"oks_nms: {sigmas.size} OKS sigmas for {keypoints.shape[1]} keypoints")
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
