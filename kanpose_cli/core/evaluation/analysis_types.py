"""The vocabulary of the keypoint error diagnosis (:mod:`kanpose_cli.core.evaluation.analysis`): thresholds, keypoint
classes, correction steps, and the dataclasses that hold a diagnosis.

It sits below both :mod:`~kanpose_cli.core.evaluation.analysis` (which computes a diagnosis) and
:mod:`~kanpose_cli.core.evaluation.analysis_plots` (which draws one), so the two need not import each other:
analysis imports the plots lazily, the plots import only this module. Method and definitions: see
:mod:`~kanpose_cli.core.evaluation.analysis` (Ronchi & Perona, ICCV 2017, "coco-analyze").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kanpose_cli.core.keypoints import KeypointSet

GOOD_KS = 0.85
"""Keypoint similarity at or above which a keypoint is ``good`` (paper: jitter ends at ks 0.85)."""
PROXIMITY_KS = 0.5
"""Keypoint similarity that counts as "in the proximity of" a body part (jitter / inversion / swap threshold)."""
MATCH_OKS = 0.1
"""OKS at which detections are matched to ground truth for the diagnosis (the paper's localisation threshold)."""
SCORING_OKS = 0.5
"""Minimum OKS of a detection competing for a person in the scoring-error count (coco-analyze)."""
AP_OKS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
"""The ten COCO OKS thresholds .50:.95 averaged by AP."""
PR_OKS = (0.75, 0.5, 0.1)
"""OKS thresholds of the stored precision–recall curves (the paper's figure)."""

CLASSES = ("good", "jitter", "inversion", "swap", "miss")
"""Keypoint classes; their codes are the positions in this tuple (-1: keypoint not labelled in the ground truth)."""
GOOD, JITTER, INVERSION, SWAP, MISS = range(5)
UNLABELLED = -1
KEYPOINT_ERRORS = ("miss", "swap", "inversion", "jitter")
"""Keypoint error types in the order they are corrected."""
STEPS = ("original", *KEYPOINT_ERRORS, "score", "background_fp", "false_negative")
"""Cumulative correction steps: each step also keeps every correction before it."""
STEP_LABELS = {"original": "original", "miss": "+ miss", "swap": "+ swap", "inversion": "+ inversion",
               "jitter": "+ jitter", "score": "+ scoring", "background_fp": "+ background FP",
               "false_negative": "+ false negatives"}
SIZES = ("all", "medium", "large")
MEDIUM_AREA, LARGE_AREA = 32.0 ** 2, 96.0 ** 2
MAX_DETS = 20
METHOD = ("Ronchi & Perona, Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation, ICCV 2017 "
          "(coco-analyze); matching and AP by pycocotools COCOeval iouType=keypoints")


# ------------------------------------------------------------------------------------------------ data model
@dataclass
class MatchDiagnosis:
    """One detection matched to a ground-truth person at OKS ≥ 0.1, with the class of each keypoint.

    Attributes:
        result_index: position of the detection in the results list. image_id, gt_id: COCO ids.
        score: the detection's score. oks: OKS with the matched person (pycocotools' value), in [0, 1].
        size: ``"small"`` (< 32² px²), ``"medium"`` or ``"large"`` (> 96² px²) by the person's area.
        classes: (K,) int8 class codes (:data:`CLASSES` positions, -1 unlabelled).
        ks: (K,) keypoint similarity with the matched person (nan where unlabelled).
        pred_xy, gt_xy: (K, 2) predicted and ground-truth keypoints (pixels, x before y). gt_vis: (K,) visibility.
    """

    result_index: int
    image_id: int
    gt_id: int
    score: float
    oks: float
    size: str
    classes: np.ndarray
    ks: np.ndarray
    pred_xy: np.ndarray
    gt_xy: np.ndarray
    gt_vis: np.ndarray

    def count(self, name: str) -> int:
        """Number of keypoints of class ``name``."""
        return int(np.sum(self.classes == CLASSES.index(name)))


@dataclass
class Analysis:
    """Result of :func:`~kanpose_cli.core.evaluation.analysis.analyze`: ``report`` (JSON-ready dict, written as
    ``analysis.json``), ``matches`` (one :class:`MatchDiagnosis` per matched detection), the ``keypoint_set``, and
    the ids of the background false positives (``background_fp``, result indices), duplicates and false-negative
    persons (``false_negative``, annotation ids)."""

    report: dict
    matches: list[MatchDiagnosis]
    keypoint_set: KeypointSet
    background_fp: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    false_negative: list[int] = field(default_factory=list)
