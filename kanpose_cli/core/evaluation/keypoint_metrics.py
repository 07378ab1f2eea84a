"""Single-person keypoint metrics: PCK@α (box-, torso- or head-normalised: PCK, tPCK, PCKh), AUC, EPE and NME.

Pure NumPy. Every function takes predictions and ground truth of N persons with K keypoints, ``(N, K, 2)`` arrays of
``x, y`` in pixels of one and the same image frame (x before y), and a ``(N, K)`` mask that is True where the
ground-truth keypoint is labelled (unlabelled keypoints are left out of every count).

Definitions follow mmpose ``mmpose/evaluation/functional/keypoint_eval.py`` (``keypoint_pck_accuracy``,
``keypoint_auc``, ``keypoint_epe``, ``keypoint_nme``) and its metric classes
(``mmpose/evaluation/metrics/keypoint_2d_metrics.py``: ``PCKAccuracy`` with ``norm_item`` ``bbox`` / ``head`` /
``torso``, ``MpiiPCKAccuracy``, ``AUC``, ``EPE``, ``NME``):

- distance of a keypoint: ``d = ‖pred − gt‖ / s`` with ``s`` the person's normaliser in pixels (1 for EPE);
- a keypoint is correct at threshold α when ``d < α`` (strict, as mmpose);
- a person whose normaliser is 0, negative or not finite is left out entirely (mmpose masks a zero normaliser; it
  replaces a negative one by 1e6, which would count every keypoint as correct: here such a person is not scored);
- a prediction that is not finite (NaN: a person the detector did not find) counts as a miss: it is in the
  denominator and never correct (for EPE / NME its distance is infinite, so the mean is too: say so with the count
  of missing predictions instead of averaging them away);
- where mmpose returns -1 (a keypoint with no labelled instance) or 0 (nothing scored at all), these functions return
  NaN, so an empty set is never mistaken for a score.

Each metric returns a :class:`KeypointScores`: per-keypoint values and two summaries, ``mean`` (the mean of the
per-keypoint values over the keypoints scored at least once: mmpose ``keypoint_pck_accuracy``'s ``avg_acc``, the
figure its ``PCKAccuracy`` reports) and ``overall`` (over all scored keypoint instances together, each counted once:
the joint-count-weighted figure of the official MPII evaluation, and mmpose's ``keypoint_epe`` / ``keypoint_nme``).

Normalisers (:func:`box_size`, :func:`torso_size`, :func:`head_size_from_box`, :func:`head_size_from_joints`,
:func:`interocular`) return one value per person in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WFLW_OUTER_EYE_CORNERS = (60, 72)
"""WFLW's 98 landmarks: the outer corners of the two eyes, mmpose ``NME.DEFAULT_KEYPOINT_INDICES['wflw']``."""

MPII_HEAD_BOX_FACTOR = 0.6
"""Official MPII evaluation (``eval/evalPCKh.m``, mmpose ``MpiiDataset`` / ``SC_BIAS``): head size = 0.6 × the
diagonal of the annotated head box."""


@dataclass(frozen=True)
class KeypointScores:
    """One metric over N persons × K keypoints.

    Attributes:
        per_keypoint: (K,) float64, the metric of each keypoint over the persons where it is scored; NaN for a
            keypoint scored nowhere.
        counts: (K,) int64, how many persons each keypoint was scored on.
        mean: mean of ``per_keypoint`` over the keypoints with ``counts > 0`` (mmpose ``keypoint_pck_accuracy``'s
            ``avg_acc``); NaN when nothing was scored.
        overall: the metric over all scored keypoint instances together (``per_keypoint`` weighted by ``counts``:
            the official MPII PCKh, mmpose ``keypoint_epe`` / ``keypoint_nme``); NaN when nothing was scored.
    """

    per_keypoint: np.ndarray
    counts: np.ndarray
    mean: float
    overall: float

    @property
    def scored(self) -> int:
        """Number of keypoint instances scored."""
        return int(self.counts.sum())

    def to_dict(self, names=None) -> dict:
        """JSON-ready: ``{"mean", "overall", "per_keypoint": {name: value or None}, "counts": {name: n}}``."""
        names = list(names) if names is not None else [str(k) for k in range(len(self.counts))]
        return {"mean": _num(self.mean), "overall": _num(self.overall),
                "per_keypoint": {n: _num(v) for n, v in zip(names, self.per_keypoint)},
                "counts": {n: int(c) for n, c in zip(names, self.counts)}}


def _num(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


# ------------------------------------------------------------------------------------------------- checks
def _inputs(pred, gt, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    if pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred must be (N, K, 2) x, y; got shape {pred.shape}")
    if gt.shape != pred.shape:
        raise ValueError(f"gt has shape {gt.shape}, pred {pred.shape}: they must match")
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask must be (N, K) = {pred.shape[:2]}; got {mask.shape}")
    return pred, gt, mask


def _normaliser(norm, n: int) -> np.ndarray:
    """(N,) per-person normaliser from a scalar, (N,) or mmpose's (N, 2) (both columns equal)."""
    norm = np.asarray(norm, dtype=np.float64)
    if norm.ndim == 0:
        return np.full(n, float(norm))
    if norm.ndim == 2 and norm.shape == (n, 2):
        if not np.allclose(norm[:, 0], norm[:, 1], equal_nan=True):
            raise ValueError("a (N, 2) normaliser must have equal columns (one size per person)")
        return norm[:, 0].copy()
    if norm.shape != (n,):
        raise ValueError(f"normaliser must be a scalar, (N,) or (N, 2) with N = {n}; got shape {norm.shape}")
    return norm.copy()


def normalized_distances(pred, gt, mask, norm) -> tuple[np.ndarray, np.ndarray]:
    """Distances ``‖pred − gt‖ / norm`` of the scored keypoints (mmpose ``_calc_distances``).

    Args:
        pred, gt: (N, K, 2) ``x, y`` pixels. mask: (N, K) True where the ground truth is labelled.
        norm: per-person normaliser in pixels: scalar, (N,) or (N, 2) with equal columns.

    Returns:
        ``(distances (N, K) float64, scored (N, K) bool)``: ``scored`` is ``mask`` without the persons whose
        normaliser is ≤ 0 or not finite; distances are NaN where not scored and +inf where the prediction is not
        finite (a missed keypoint).

    Raises:
        ValueError: shapes that do not match.
    """
    pred, gt, mask = _inputs(pred, gt, mask)
    s = _normaliser(norm, pred.shape[0])
    scored = mask & (np.isfinite(s) & (s > 0))[:, None] & np.isfinite(gt).all(-1)
    dist = np.full(mask.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.linalg.norm(pred - gt, axis=-1) / np.where(s > 0, s, 1.0)[:, None]
    d = np.where(np.isfinite(pred).all(-1), d, np.inf)
    dist[scored] = d[scored]
    return dist, scored


def _summarise(values: np.ndarray, scored: np.ndarray) -> KeypointScores:
    """Per-keypoint means of ``values`` (N, K) over ``scored``, and the two summaries."""
    counts = scored.sum(0).astype(np.int64)
    totals = np.where(scored, values, 0.0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)
    has = counts > 0
    mean = float(per[has].mean()) if has.any() else float("nan")
    overall = float(totals.sum() / counts.sum()) if counts.sum() else float("nan")
    return KeypointScores(per, counts, mean, overall)


# ------------------------------------------------------------------------------------------------- metrics
def pck(pred, gt, mask, norm, thr: float) -> KeypointScores:
    """Percentage of correct keypoints, PCK@α: a keypoint is correct when ``‖pred − gt‖ / norm < thr``.

    mmpose ``keypoint_pck_accuracy`` (``mmpose/evaluation/functional/keypoint_eval.py``). The normaliser decides the
    name: the person box size (:func:`box_size`, mmpose ``PCKAccuracy(norm_item='bbox')``), the torso
    (:func:`torso_size`, tPCK; DeepPose's PCK / PDJ on LSP), the head (:func:`head_size_from_box` or
    :func:`head_size_from_joints`, PCKh, :func:`pckh`).

    Args:
        pred, gt: (N, K, 2) ``x, y`` pixels. mask: (N, K) True where the ground truth is labelled.
        norm: per-person normaliser in pixels: scalar, (N,) or (N, 2) with equal columns.
        thr: α, the threshold on the normalised distance (0.05, 0.1, 0.2; 0.5 for PCKh).

    Returns:
        :class:`KeypointScores` with fractions in [0, 1]: ``mean`` is mmpose's ``avg_acc``, ``overall`` the
        fraction of all scored keypoints.

    Raises:
        ValueError: shapes that do not match.
    """
    dist, scored = normalized_distances(pred, gt, mask, norm)
    return _summarise((dist < thr).astype(np.float64), scored)


def pckh(pred, gt, mask, head_sizes, thr: float = 0.5) -> KeypointScores:
    """PCKh@α (Andriluka et al., *2D Human Pose Estimation: New Benchmark and State of the Art Analysis*, CVPR 2014):
    :func:`pck` with the head size as normaliser; the MPII figure is ``overall`` over the keypoints it scores
    (mmpose ``MpiiPCKAccuracy``: the joint-count-weighted mean, pelvis and thorax left out by the caller's mask)."""
    return pck(pred, gt, mask, head_sizes, thr)


def auc(pred, gt, mask, norm, num_thrs: int = 20) -> float:
    """Area under the PCK curve (mmpose ``keypoint_auc``): the mean of PCK ``mean`` at the thresholds
    ``i / num_thrs``, i = 0 … num_thrs − 1, i.e. ``Σ_i PCK(i / T) / T``.

    Args:
        pred, gt, mask: as :func:`pck`. norm: normaliser in pixels (mmpose's ``AUC`` metric uses a scalar, 30 px,
            for hands). num_thrs: T ≥ 1.

    Returns:
        AUC in [0, 1]; NaN when nothing is scored.

    Raises:
        ValueError: shapes that do not match, ``num_thrs`` < 1.
    """
    if num_thrs < 1:
        raise ValueError("num_thrs must be at least 1")
    dist, scored = normalized_distances(pred, gt, mask, norm)
    if not scored.any():
        return float("nan")
    return float(sum(_summarise((dist < i / num_thrs).astype(np.float64), scored).mean
                     for i in range(num_thrs)) / num_thrs)


def epe(pred, gt, mask) -> KeypointScores:
    """End-point error (mmpose ``keypoint_epe``): Euclidean distance ``‖pred − gt‖`` in pixels; ``overall`` is the
    mean over all scored keypoints (mmpose's figure). A missed prediction makes its keypoint's and the overall
    value infinite."""
    pred, gt, mask = _inputs(pred, gt, mask)
    dist, scored = normalized_distances(pred, gt, mask, np.ones(len(pred)))
    return _summarise(dist, scored)


def nme(pred, gt, mask, norm) -> KeypointScores:
    """Normalised mean error (mmpose ``keypoint_nme``): ``‖pred − gt‖ / norm`` averaged; ``overall`` is the mean over
    all scored keypoints (mmpose's figure). For faces the normaliser is the inter-ocular distance
    (:func:`interocular`; WFLW: outer eye corners 60 and 72, :data:`WFLW_OUTER_EYE_CORNERS`). Persons with a zero
    normaliser are not scored."""
    dist, scored = normalized_distances(pred, gt, mask, norm)
    return _summarise(dist, scored)


# ------------------------------------------------------------------------------------------------- normalisers
def box_size(boxes_xyxy) -> np.ndarray:
    """(N,) ``max(w, h)`` of (N, 4) person boxes ``x1, y1, x2, y2`` in pixels (mmpose ``PCKAccuracy`` with
    ``norm_item='bbox'``: ``np.max(bbox[2:])`` of the ``w, h`` of the box)."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


def torso_size(gt, mask, first: int, second: int) -> np.ndarray:
    """(N,) distance in pixels between two ground-truth keypoints (the torso diameter): LSP's left shoulder and
    right hip in DeepPose (Toshev & Szegedy, CVPR 2014); mmpose ``PCKAccuracy(norm_item='torso')`` on JHMDB.
    0 where either keypoint is unlabelled (the person is then not scored)."""
    gt = np.asarray(gt, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    d = np.linalg.norm(gt[:, first] - gt[:, second], axis=-1)
    return np.where(mask[:, first] & mask[:, second], d, 0.0)


def head_size_from_box(head_boxes) -> np.ndarray:
    """(N,) official MPII head size: 0.6 × the diagonal of each head box (``x1, y1, x2, y2`` pixels, or
    ``[[x1, y1], [x2, y2]]``), :data:`MPII_HEAD_BOX_FACTOR` (``evalPCKh.m``; mmpose ``MpiiDataset``)."""
    b = np.asarray(head_boxes, dtype=np.float64).reshape(-1, 4)
    return MPII_HEAD_BOX_FACTOR * np.linalg.norm(b[:, 2:] - b[:, :2], axis=-1)


def head_size_from_joints(gt, mask, head_top: int, neck: int) -> np.ndarray:
    """(N,) the head segment length ‖head top − upper neck‖ in pixels: the size PCKh is defined on (Andriluka et
    al. 2014: "50 % of the head segment length"), for annotations without head boxes. 0 where either is
    unlabelled."""
    return torso_size(gt, mask, head_top, neck)


def interocular(gt, first: int = WFLW_OUTER_EYE_CORNERS[0], second: int = WFLW_OUTER_EYE_CORNERS[1]) -> np.ndarray:
    """(N,) inter-ocular distance in pixels between two ground-truth landmarks (default WFLW's outer eye corners
    60 and 72), mmpose ``NME._get_normalize_factor``."""
    gt = np.asarray(gt, dtype=np.float64)
    return np.linalg.norm(gt[:, first] - gt[:, second], axis=-1)
