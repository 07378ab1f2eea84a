"""Pseudo-labelling: a teacher model turns unlabelled images into a COCO keypoint annotation file.

Teachers: any kanpose pose model with a person detector (through :class:`TopDownPipeline`), or an ultralytics YOLO
pose model run end to end (``yolo:yolo11n-pose.pt``, via :class:`kanpose_cli.core.detect.yolo.YoloPoseEstimator`;
this module never imports ultralytics itself).

Output (COCO keypoint format, loadable by :func:`kanpose_cli.core.data.dataset.load_coco_instances` and pycocotools):
``images`` (id from the digits of the file name when unique, else sequential; ``file_name`` relative to the source
folder; width, height), ``annotations`` (``bbox`` xywh pixels, ``keypoints`` x, y, v with v = 2 where the keypoint
score ≥ ``kpt_thr`` else 0 (and x = y = 0), ``num_keypoints``, ``area`` = box area, ``iscrowd`` 0, ``category_id`` 1,
``score`` = box score, ``keypoint_scores``), ``categories`` (person with keypoint names and the 1-based skeleton),
and ``info`` (teacher, thresholds). Persons with box score < ``box_thr`` or fewer than ``min_keypoints`` kept
keypoints are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from kanpose_cli.core.detect.base import image_id_from_path
from kanpose_cli.core.keypoints import COCO17, KeypointSet


@dataclass
class LabelSummary:
    """Counts of one labelling run."""

    images: int
    skipped: int
    persons: int
    keypoints: int


class PipelineTeacher:
    """kanpose pose model + person detector as a teacher.
    ``(image_bgr, path) -> (boxes, box_scores, kpts, kpt_scores)``."""

    def __init__(self, detector, pipeline):
        self.detector, self.pipeline = detector, pipeline
        self.keypoints: KeypointSet = pipeline.model.keypoints
        self.name = f"{pipeline.model.name} ({pipeline.model.weights_label}) + {detector.name}"

    def __call__(self, image_bgr, path=""):
        boxes, scores = self.detector(image_bgr, path)
        res = self.pipeline.estimate(image_bgr, boxes, scores, path)
        return res.boxes, res.box_scores, res.keypoints, res.keypoint_scores


class YoloTeacher:
    """An ultralytics pose model (``YoloPoseEstimator``) as a teacher; same call signature as PipelineTeacher."""

    keypoints: KeypointSet = COCO17

    def __init__(self, estimator):
        self.estimator = estimator
        self.name = estimator.name

    def __call__(self, image_bgr, path=""):
        return self.estimator.predict_batch([image_bgr])[0]


def coco_categories(kset: KeypointSet) -> list[dict]:
    """The COCO ``categories`` list: one person category with keypoint names and the 1-based skeleton."""
    return [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(kset.names),
             "skeleton": [[a + 1, b + 1] for a, b in kset.skeleton]}]


def instances_to_annotations(boxes: np.ndarray, box_scores: np.ndarray, kpts: np.ndarray, kpt_scores: np.ndarray,
                             image_id: int, first_ann_id: int, box_thr: float, kpt_thr: float,
                             min_keypoints: int = 1) -> list[dict]:
    """COCO annotations of one image's teacher predictions.

    Args:
        boxes: (N, 4) xyxy image pixels. box_scores: (N,). kpts: (N, K, 2) image pixels. kpt_scores: (N, K) in [0, 1].
        box_thr: minimum box score. kpt_thr: keypoints with score ≥ this get v = 2, others v = 0 (x = y = 0).
        min_keypoints: minimum kept keypoints for a person to be written.
    """
    anns = []
    for b, s, k, ks in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(box_scores).reshape(-1), kpts, kpt_scores):
        if float(s) < box_thr:
            continue
        keep = np.asarray(ks) >= kpt_thr
        if int(keep.sum()) < max(1, min_keypoints):
            continue
        flat = []
        for (x, y), kept in zip(np.asarray(k, dtype=np.float64), keep):
            flat += [round(float(x), 2), round(float(y), 2), 2] if kept else [0, 0, 0]
        x1, y1, x2, y2 = (float(v) for v in b)
        w, h = max(0.0, x2 - x1), max(0.0, y2 - y1)
        anns.append({"id": first_ann_id + len(anns), "image_id": int(image_id), "category_id": 1,
                     "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)], "area": round(w * h, 2),
                     "iscrowd": 0, "num_keypoints": int(keep.sum()), "keypoints": flat, "score": round(float(s), 4),
                     "keypoint_scores": [round(float(v), 4) for v in ks]})
    return anns


def label_images(frames: Iterable, teacher: Callable, source_root: Path | None, box_thr: float = 0.5,
                 kpt_thr: float = 0.5, min_keypoints: int = 1,
                 on_frame: Callable | None = None) -> tuple[dict, LabelSummary]:
    """Run ``teacher`` over ``frames`` (objects with ``image`` BGR uint8 or None, ``path``, ``error``).

    Args:
        source_root: folder the ``file_name`` entries are made relative to (None: base names).
        on_frame: ``fn(frame, n_persons or None)`` after each frame (None when the frame was skipped).

    Returns:
        ``(coco_dict, summary)``.
    """
    images, annotations, used_ids = [], [], set()
    skipped = 0
    for n, frame in enumerate(frames):
        if frame.image is None:
            skipped += 1
            if on_frame:
                on_frame(frame, None)
            continue
        path = Path(frame.path)
        image_id = image_id_from_path(path)
        if image_id is None or image_id in used_ids:
            image_id = 10**9 + n
        used_ids.add(image_id)
        try:
            rel = str(path.relative_to(source_root)) if source_root is not None else path.name
        except ValueError:
            rel = path.name
        h, w = frame.image.shape[:2]
        images.append({"id": image_id, "file_name": rel, "width": int(w), "height": int(h)})
        boxes, scores, kpts, kscores = teacher(frame.image, str(path))
        anns = instances_to_annotations(boxes, scores, kpts, kscores, image_id, len(annotations) + 1, box_thr,
                                        kpt_thr, min_keypoints)
        annotations.extend(anns)
        if on_frame:
            on_frame(frame, len(anns))
    kset = getattr(teacher, "keypoints", COCO17)
    coco = {"info": {"description": "kanpose pseudo-labels", "teacher": getattr(teacher, "name", "?"),
                     "box_thr": box_thr, "kpt_thr": kpt_thr, "min_keypoints": min_keypoints},
            "licenses": [], "images": images, "annotations": annotations, "categories": coco_categories(kset)}
    summary = LabelSummary(len(images), skipped, len(annotations), int(sum(a["num_keypoints"] for a in annotations)))
    return coco, summary
