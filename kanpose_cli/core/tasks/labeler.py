"""Pseudo-labelling: a teacher model turns unlabelled images into a COCO keypoint annotation file.

Teacher: a :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` (any kanpose pose model behind a box source,
or an ultralytics YOLO pose model run end to end, ``yolo:yolo11n-pose.pt``), run over the images with the crops of
several images batched together; or any callable ``(image_bgr, path) -> PoseResult`` (or the tuple
``(boxes, box_scores, keypoints, keypoint_scores)``).

Output (COCO keypoint format, loadable by :func:`kanpose_cli.core.data.coco.load_coco_instances` and pycocotools):
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
from typing import Callable, Iterable, Iterator

import numpy as np

from kanpose_cli.core.detect.base import image_id_from_path
from kanpose_cli.core.evaluation.oks import object_keypoint_similarity
from kanpose_cli.core.keypoints import COCO17, KeypointSet
from kanpose_cli.core.results import PoseResult


@dataclass
class LabelSummary:
    """Counts of one labelling run."""

    images: int
    skipped: int
    persons: int
    keypoints: int


def teach(frames: Iterable, teacher) -> Iterator[tuple[object, tuple | None]]:
    """``(frame, (boxes, box_scores, keypoints, keypoint_scores) or None)`` for every frame.

    ``teacher`` is a :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` (run batched over the frames) or a
    callable ``(image, path) -> PoseResult | tuple | None``. Boxes (N, 4) and keypoints (N, K, 2) are pixels of the
    frame's image, x before y; None for a frame that could not be read (``frame.image is None``).
    """
    if hasattr(teacher, "run"):  # a PoseEstimator: batched over images
        pairs = teacher.run(frames)
    else:
        pairs = ((f, None if f.image is None else teacher(f.image, str(f.path))) for f in frames)
    for frame, out in pairs:
        if isinstance(out, PoseResult):
            out = (out.boxes, out.box_scores, out.keypoints, out.keypoint_scores)
        yield frame, out


def teacher_name(teacher) -> str:
    """``model (weights) + boxes`` of an estimator, else the teacher's ``name``."""
    if hasattr(teacher, "boxes_label"):
        return f"{teacher.name} ({teacher.weights_label}) + {teacher.boxes_label}"
    return getattr(teacher, "name", "?")


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


def label_images(frames: Iterable, teacher, source_root: Path | None, box_thr: float = 0.5,
                 kpt_thr: float = 0.5, min_keypoints: int = 1,
                 on_frame: Callable | None = None) -> tuple[dict, LabelSummary]:
    """Run ``teacher`` over ``frames`` (objects with ``image`` BGR uint8 or None, ``path``, ``error``).

    Args:
        teacher: a :class:`~kanpose_cli.core.inference.estimator.PoseEstimator`, or a callable
            ``(image_bgr, path) -> PoseResult | (boxes (N, 4) xyxy px, box_scores (N,), keypoints (N, K, 2) px,
            keypoint_scores (N, K))``.
        source_root: folder the ``file_name`` entries are made relative to (None: base names).
        on_frame: ``fn(frame, n_persons or None)`` after each frame (None when the frame was skipped).

    Returns:
        ``(coco_dict, summary)``.
    """
    images, annotations, used_ids = [], [], set()
    skipped = 0
    for n, (frame, out) in enumerate(teach(frames, teacher)):
        if out is None:
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
        boxes, scores, kpts, kscores = out
        anns = instances_to_annotations(boxes, scores, kpts, kscores, image_id, len(annotations) + 1, box_thr,
                                        kpt_thr, min_keypoints)
        annotations.extend(anns)
        if on_frame:
            on_frame(frame, len(anns))
    kset = getattr(teacher, "keypoints", COCO17)
    coco = {"info": {"description": "kanpose pseudo-labels", "teacher": teacher_name(teacher),
                     "box_thr": box_thr, "kpt_thr": kpt_thr, "min_keypoints": min_keypoints},
            "licenses": [], "images": images, "annotations": annotations, "categories": coco_categories(kset)}
    summary = LabelSummary(len(images), skipped, len(annotations), int(sum(a["num_keypoints"] for a in annotations)))
    return coco, summary


def make_teacher(teacher: str | None = None, model: str | None = None, weights: str | None = None,
                 detector: str | None = None, boxes: str | None = None, device: str = "cpu", flip: bool = True,
                 batch: int = 32, conf: float = 0.25, box_thr: float = 0.5, backend: str = "auto"):
    """The teacher :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` of ``kanpose label``.

    Args:
        teacher: ``yolo:NAME`` for an ultralytics pose model run end to end (same as ``model="yolo:NAME"``), or
            None for the kanpose ``model`` / ``weights`` behind ``boxes`` / ``detector`` (``--detector none``: each
            image is one person).
        conf, box_thr: the box source keeps boxes scoring at least ``min(conf, box_thr)``; labelling then drops
            persons below ``box_thr``.
        backend: what runs a kanpose teacher's pose network (:mod:`kanpose_cli.core.inference.backend`).

    Raises:
        UsageError: a ``teacher`` that is not ``yolo:NAME``, or one combined with ``model`` / ``weights``; as
            :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` otherwise.
    """
    from kanpose_cli.core.inference.estimator import PoseEstimator, is_yolo_model
    from kanpose_cli.core.errors import UsageError

    if teacher is not None:
        if not is_yolo_model(teacher) or len(teacher) <= 5:
            raise UsageError(f"--teacher {teacher!r}: expected yolo:NAME (e.g. yolo:yolo11n-pose.pt); for kanpose "
                             f"models use --model/--weights")
        if model is not None or weights is not None:
            raise UsageError("--teacher yolo:... cannot be combined with --model/--weights")
        model = teacher
    return PoseEstimator(model, weights, detector, boxes, device=device, flip=flip, batch=batch,
                         conf=min(conf, box_thr), backend=backend)


def label_source(source: str):
    """SOURCE of ``kanpose label`` -> ``(Source, root folder or None)``; file names are written relative to root.

    Raises:
        UsageError: a video or webcam. InputError: as :func:`~kanpose_cli.core.data.sources.open_source`.
    """
    from kanpose_cli.core.data.sources import open_source
    from kanpose_cli.core.errors import UsageError

    src = open_source(source)
    if src.is_stream or src.kind == "video":
        raise UsageError("label needs images (a folder, glob or image), not a video or webcam")
    root = Path(source).expanduser()
    return src, (root if root.is_dir() else None)


def fill_missing_keypoints(instances: list, teacher, images_root: str | Path, kpt_thr: float = 0.5,
                           match_oks: float = 0.5, on_image: Callable | None = None) -> tuple[dict, LabelSummary]:
    """Teacher fill-in: add pseudo-labels for the joints a training set lacks, keeping every ground-truth joint.

    For each image of ``instances`` the teacher runs once; each ground-truth person is matched to the teacher
    person with the highest OKS on the person's labelled joints (the OKS sigmas of the teacher's keypoint set, box
    area as the scale); when that OKS is at least ``match_oks``, every joint the ground truth leaves unlabelled
    (v = 0) and the teacher scores at least ``kpt_thr`` is written with v = 2. Ground-truth joints are never
    changed. (mmpose's way of combining datasets leaves such joints at weight 0; this is the optional step the issue
    calls teacher fill-in, e.g. face points on LSP-Extended.)

    Args:
        instances: :class:`~kanpose_cli.core.data.instances.Instance` list on the teacher's keypoint set (e.g.
            from :func:`kanpose_cli.core.data.training_sets.load_source`), image paths readable.
        teacher: as :func:`label_images`. images_root: the images folder; ``file_name`` is relative to it.
        kpt_thr: minimum teacher keypoint score for a filled joint. match_oks: minimum OKS for a match.
        on_image: ``fn(frame, n_filled or None)`` after each image (None when it could not be read).

    Returns:
        ``(coco dict, summary)``: one annotation per instance (all of them, filled or not; ``bbox`` = the
        instance's box as xywh, ``filled`` = the 0-based indices written by the teacher, ``match_oks``), images
        with ``file_name`` relative to ``images_root``. ``summary.keypoints`` counts the filled joints.
    """
    from kanpose_cli.core.data.sources import read_frames

    kset = getattr(teacher, "keypoints", COCO17)
    sigmas = kset.sigmas_array()
    by_path: dict[str, list] = {}
    for inst in instances:
        by_path.setdefault(inst.image_path, []).append(inst)


    images, annotations = [], []
    skipped = filled_total = 0
    for n, (frame, out) in enumerate(teach(read_frames(by_path), teacher)):
        people = by_path[str(frame.path)]
        if out is None:
            skipped += 1
            if on_image:
                on_image(frame, None)
            continue
        image_id = n + 1
        h, w = frame.image.shape[:2]
        try:
            rel = str(Path(frame.path).relative_to(Path(images_root)))
        except ValueError:
            rel = Path(frame.path).name
        images.append({"id": image_id, "file_name": rel, "width": int(w), "height": int(h)})
        _, _, t_kpts, t_scores = out
        t_kpts, t_scores = np.asarray(t_kpts, dtype=np.float64), np.asarray(t_scores, dtype=np.float64)
        n_filled = 0
        for inst in people:
            kp = inst.keypoints.copy()
            x1, y1, x2, y2 = (float(v) for v in inst.box)
            area = max(1.0, (x2 - x1) * (y2 - y1))
            # OKS of each teacher person against this person's labelled joints, the box area as the scale
            sims = object_keypoint_similarity(t_kpts.reshape(-1, kset.num_keypoints, 2), kp[None, :, :2], area,
                                              sigmas, kp[None, :, 2] > 0)
            best = int(np.argmax(sims)) if len(sims) else -1
            filled: list[int] = []
            if best >= 0 and sims[best] >= match_oks:
                for k in np.flatnonzero((kp[:, 2] <= 0) & (t_scores[best] >= kpt_thr)):
                    kp[k] = (t_kpts[best, k, 0], t_kpts[best, k, 1], 2.0)
                    filled.append(int(k))
            n_filled += len(filled)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1 + 1, 2), round(y2 - y1 + 1, 2)],
                "area": round(area, 2), "iscrowd": 0, "num_keypoints": int((kp[:, 2] > 0).sum()),
                "keypoints": [round(float(v), 2) if j % 3 < 2 else int(v) for j, v in enumerate(kp.reshape(-1))],
                "filled": filled, "match_oks": round(float(sims[best]), 4) if best >= 0 else 0.0})
        filled_total += n_filled
        if on_image:
            on_image(frame, n_filled)
    coco = {"info": {"description": "kanpose teacher fill-in", "teacher": teacher_name(teacher), "kpt_thr": kpt_thr,
                     "match_oks": match_oks},
            "licenses": [], "images": images, "annotations": annotations, "categories": coco_categories(kset)}
    return coco, LabelSummary(len(images), skipped, len(annotations), filled_total)
