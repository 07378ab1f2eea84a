"""The standard 2-D human pose benchmarks by name: LSP (PCK@0.2, torso), MPII (PCKh@0.5), CrowdPose (AP easy /
medium / hard) and OCHuman (COCO AP). ``kanpose eval lsp|mpii|crowdpose|ochuman`` call these.

Every benchmark runs a :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` (flip test on by default, as
``eval coco``) and scores what it predicts on the benchmark's own keypoints, through the model's declared
mapping (:func:`~kanpose_cli.core.evaluation.benchmark_sets.scoring_mapping`): a COCO-17 model is scored on the
12 limb joints that COCO shares with LSP, MPII and CrowdPose; joints it does not have (LSP's neck and head top,
MPII's pelvis, thorax, upper neck and head top, CrowdPose's head top and neck) are not scored, and every report
lists the scored joints. A model of the benchmark's own set is scored on all of them.

**Single-person benchmarks** (LSP, MPII: one annotated person per entry, :func:`evaluate_single_person`).

- Person box, ``boxes="gt"``: LSP has none; it is the labelled joints' extent enlarged 1.2× and clipped to the image
  (:func:`kanpose_cli.core.data.lsp.joints_box`, the box kanpose trains LSP people on); MPII's is mmpose's
  ``MpiiDataset`` box (:func:`kanpose_cli.core.data.mpii.mpii_box`; training clips it to the image): centre
  ``center − 1`` (1-based MATLAB pixels) moved down by ``15 · scale`` pixels, side ``200 · scale`` pixels. The crop
  then takes the protocol's 1.25 padding (:data:`~kanpose_cli.core.protocol.
  BOX_PADDING`), as every kanpose crop.
- ``boxes="detector"``: the YOLO person detector finds the people; the one whose box centre is nearest to the mean
  of the annotated person's labelled joints is scored; an image where it finds nobody counts every joint of the
  annotated person as missed.
- Which joints count: those labelled in the annotation, as mmpose's ``PCKAccuracy`` (its mask is the visibility
  flag: for LSP every joint, occluded ones included, since all are annotated; for LSP-Extended only those with
  flag 1, its others have no reliable position; for MPII ``joints_vis > 0``).
- LSP: PCK@0.2, a joint is correct within 0.2 × the torso diameter, the distance from the left shoulder to the
  right hip of the annotation (Toshev & Szegedy, *DeepPose*, CVPR 2014). A person whose left shoulder or right hip
  is not labelled has no torso and is not scored (counted in ``num_persons_not_scored``). The figure is mmpose's
  ``keypoint_pck_accuracy`` average: the mean of the per-joint PCKs.
- MPII: PCKh@0.5 (Andriluka et al., CVPR 2014), threshold 0.5 × the head size. The official head size is 0.6 ×
  the diagonal of the annotated head box (``evalPCKh.m``; mmpose ``MpiiDataset.headbox_file``); mmpose's MPII JSON
  has no head boxes, so an entry's ``headbox`` (``[x1, y1, x2, y2]`` or ``[[x1, y1], [x2, y2]]``) is used when
  present, else the head segment itself, ‖head top − upper neck‖ of the annotation, the length PCKh is defined on in
  the paper. MPII's joints are 1-based MATLAB pixels: predictions are compared after adding 1, as mmpose's
  ``MpiiPCKAccuracy`` does. The figure is the official one: the fraction of correct joints over all joints but
  pelvis and thorax (mmpose's joint-count-weighted ``PCKh``).

**Multi-person benchmarks** (COCO-style files): CrowdPose (:func:`evaluate_crowdpose`, protocol in
:mod:`~kanpose_cli.core.evaluation.crowdpose_metric`) and OCHuman (:func:`evaluate_ochuman`, COCO's keypoint AP with
COCO's sigmas, the ``eval coco`` protocol unchanged). Boxes, rescoring and OKS-NMS are ``eval coco``'s
(:mod:`~kanpose_cli.core.evaluation.evaluator`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kanpose_cli.core.data.coco import CocoKeypointData
from kanpose_cli.core.data.lsp import joints_box, read_lsp_joints
from kanpose_cli.core.data.mpii import read_mpii_json
from kanpose_cli.core.data.sources import read_image
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.evaluation import keypoint_metrics as km
from kanpose_cli.core.evaluation.benchmark_sets import CROWDPOSE14, MPII16, scoring_mapping
from kanpose_cli.core.evaluation.crowdpose_metric import crowd_levels, score_crowdpose
from kanpose_cli.core.evaluation.evaluator import (ProgressFn, base_settings, estimator_settings, run_estimator,
                                                   write_metrics)
from kanpose_cli.core.io import write_json_atomic
from kanpose_cli.core.keypoints import LSP14, JointMapping, KeypointSet
from kanpose_cli.core.protocol import IMAGES_PER_CHUNK

LSP_PCK_THR = 0.2
LSP_TORSO = (LSP14.names.index("left_shoulder"), LSP14.names.index("right_hip"))  # DeepPose's torso diameter
LSP_ORIGINAL_IMAGES = 2000  # the original LSP: images 1-1000 train, 1001-2000 test
LSP_SPLITS = {"train": (1, 1000), "test": (1001, 2000)}

MPII_PCKH_THR = 0.5
MPII_HEAD_TOP, MPII_UPPER_NECK = MPII16.names.index("head_top"), MPII16.names.index("upper_neck")
MPII_NOT_IN_MEAN = (MPII16.names.index("pelvis"), MPII16.names.index("thorax"))  # official PCKh leaves them out
MPII_GROUPS = {"Head": ("head_top",), "Shoulder": ("right_shoulder", "left_shoulder"),
               "Elbow": ("right_elbow", "left_elbow"), "Wrist": ("right_wrist", "left_wrist"),
               "Hip": ("right_hip", "left_hip"), "Knee": ("right_knee", "left_knee"),
               "Ankle": ("right_ankle", "left_ankle")}  # mmpose MpiiPCKAccuracy's table (left/right averaged)

BOX_CHOICES = ("gt", "detector")
DETECTOR_CONF = 0.25  # single-person benchmarks: persons, not COCO-AP's low-threshold candidates


# ------------------------------------------------------------------------------------------------ annotations
@dataclass
class Person:
    """One annotated person of a single-person benchmark.

    Attributes:
        number: 1-based image number (LSP) or entry number (MPII). path: its image.
        joints: (K, 2) float64 ground truth ``x, y`` in 0-based pixels of the image, benchmark order.
        labelled: (K,) bool, the joints that count. norm: the PCK normaliser in pixels (0: not scorable).
        box: ``x1, y1, x2, y2`` pixels, the ground-truth person box, or None when it comes from the image
            (LSP: clipped to the image, computed once its size is known).
    """

    number: int
    path: Path
    joints: np.ndarray
    labelled: np.ndarray
    norm: float
    box: np.ndarray | None = None


def _lsp_image(images_dir: Path, number: int) -> Path:
    for name in (f"im{number:05d}.jpg", f"im{number:04d}.jpg"):
        if (images_dir / name).is_file():
            return images_dir / name
    return images_dir / f"im{number:05d}.jpg"


def parse_range(text: str) -> tuple[int, int]:
    """``"A-B"`` -> ``(A, B)``, 1-based inclusive image numbers. Raises UsageError otherwise."""
    parts = str(text).replace(" ", "").split("-")
    try:
        first, last = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--range: expected A-B (1-based image numbers, inclusive), got {text!r}") from None
    if not 1 <= first <= last:
        raise UsageError(f"--range {text}: expected 1 ≤ A ≤ B")
    return first, last


def lsp_selection(num_images: int, split: str | None = None, image_range: str | None = None,
                  where: str = "joints.mat") -> tuple[int, int]:
    """The 1-based inclusive image numbers ``(first, last)`` a LSP evaluation scores.

    ``split`` ``test`` (the default) / ``train`` are the original LSP's images 1001–2000 / 1–1000 (only for a file
    of its 2000 images), ``all`` every image; ``image_range`` ``"A-B"`` picks a block instead (e.g. held-out
    LSP-Extended images).

    Raises:
        UsageError: both a split and a range, an unknown split, a split the file does not have, a range outside the
            file.
    """
    if image_range is not None and split is not None:
        raise UsageError("give --split or --range, not both")
    split = split or "test"
    if image_range is not None:
        first, last = parse_range(image_range)
        if last > num_images:
            raise UsageError(f"--range {image_range}: {where} holds {num_images} images")
        return first, last
    if split == "all":
        return 1, num_images
    if split not in LSP_SPLITS:
        raise UsageError(f"--split: expected test, train or all, got {split!r}")
    if num_images != LSP_ORIGINAL_IMAGES:
        raise UsageError(f"{where} holds {num_images} images, not the original LSP's {LSP_ORIGINAL_IMAGES}: its "
                         f"{split} split (LSP images {LSP_SPLITS[split][0]}–{LSP_SPLITS[split][1]}) does not apply; "
                         f"give --range A-B (e.g. a held-out block) or --split all")
    return LSP_SPLITS[split]


def lsp_people(data_dir: str | Path, split: str | None = None, image_range: str | None = None,
               max_images: int | None = None) -> tuple[list[Person], dict]:
    """The annotated persons of a LSP / LSP-Extended folder (``joints.mat`` + ``images/``) to score.

    Returns:
        ``(persons, info)``: ``info`` has ``joints_file``, ``images_dir``, ``num_in_file``, ``first``, ``last``.

    Raises:
        UsageError: as :func:`lsp_selection`. InputError: a missing folder or ``joints.mat``, a malformed one.
    """
    data_dir = Path(data_dir).expanduser()
    mat, images_dir = data_dir / "joints.mat", data_dir / "images"
    if not data_dir.is_dir():
        raise InputError(f"LSP folder not found: {data_dir}")
    if not images_dir.is_dir():
        raise InputError(f"{data_dir}: no images/ folder (expected joints.mat and images/)")
    joints = read_lsp_joints(mat)
    first, last = lsp_selection(len(joints), split, image_range, str(mat))
    numbers = list(range(first, last + 1))[:max_images]
    people = []
    for n in numbers:
        kp = joints[n - 1]
        labelled = kp[:, 2] > 0
        torso = km.torso_size(kp[None, :, :2], labelled[None], *LSP_TORSO)[0]
        people.append(Person(n, _lsp_image(images_dir, n), kp[:, :2].copy(), labelled, float(torso)))
    return people, {"joints_file": str(mat), "images_dir": str(images_dir), "num_in_file": len(joints),
                    "first": numbers[0] if numbers else first, "last": numbers[-1] if numbers else last}


def mpii_people(ann_file: str | Path, images_dir: str | Path, max_images: int | None = None) -> list[Person]:
    """The persons of an mmpose MPII JSON (read by :func:`kanpose_cli.core.data.mpii.read_mpii_json`, the reader
    training uses too: joints in 0-based pixels, mmpose's person box), with their PCKh head size: 0.6 × the
    head box diagonal when the entry has a ``headbox``, else ‖head top − upper neck‖ (0 when either is unlabelled).

    Args:
        max_images: score only the first N entries (None or 0: all).

    Raises:
        InputError: a missing file or folder, not a JSON list, an entry lacking a field or with a wrong shape (the
            message names the file and the entry).
    """
    images_dir = Path(images_dir).expanduser()
    if not images_dir.is_dir():
        raise InputError(f"images folder not found: {images_dir}")
    people = []
    for e in read_mpii_json(ann_file, max_images):
        if e.headbox is not None:
            head = km.head_size_from_box(e.headbox[None])[0]
        else:
            head = km.head_size_from_joints(e.joints[None], e.labelled[None], MPII_HEAD_TOP, MPII_UPPER_NECK)[0]
        people.append(Person(e.index + 1, images_dir / e.image, e.joints, e.labelled, float(head), e.box))
    return people


# ------------------------------------------------------------------------------------------------ predictions
@dataclass
class SinglePersonRun:
    """What a single-person evaluation predicted: per person the model's keypoints ``(K_model, 3)`` ``x, y, score``
    (None: nothing found), the box used, the skipped images, seconds."""

    persons: list[Person]
    keypoints: list[np.ndarray | None]
    boxes: list[np.ndarray | None]
    skipped: list[tuple[str, str]]
    missed: int = 0
    seconds: float = 0.0


def make_single_person_estimator(model=None, weights=None, boxes: str = "gt", detector: str | None = None,
                                 device="cpu", flip: bool = True, batch: int = 32, det_conf: float = DETECTOR_CONF,
                                 backend: str = "auto"):
    """The :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` of ``eval lsp`` / ``eval mpii``: ``gt``
    boxes are given per person (no detector is loaded), ``detector`` runs YOLO at ``det_conf``.

    Raises:
        UsageError: ``boxes`` not gt/detector; a ``yolo:`` model with ``gt`` boxes (it finds its own people: it is
            scored like ``detector`` boxes, the person nearest the annotated joints).
        As :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` otherwise.
    """
    from kanpose_cli.core.inference.estimator import PoseEstimator, is_yolo_model

    if boxes not in BOX_CHOICES:
        raise UsageError(f"--boxes: expected gt or detector, got {boxes!r}")
    if is_yolo_model(model):
        if boxes != "detector":
            raise UsageError("a yolo: model finds its own people: add --boxes detector (the person nearest the "
                             "annotated joints is scored)")
        return PoseEstimator(model, device=device, conf=det_conf)
    return PoseEstimator(model, weights, detector, "none" if boxes == "gt" else "detector", device=device, flip=flip,
                         batch=batch, conf=det_conf, backend=backend)


def _nearest(result, person: Person) -> int | None:
    """Index of the predicted person whose box centre is nearest to the mean of the labelled joints."""
    if not len(result) or not person.labelled.any():
        return None
    target = person.joints[person.labelled].mean(0)
    centres = (result.boxes[:, :2] + result.boxes[:, 2:]) / 2
    return int(np.argmin(np.linalg.norm(centres - target, axis=1)))


def predict_single_person(estimator, persons: list[Person], boxes: str = "gt",
                          progress: ProgressFn | None = None) -> SinglePersonRun:
    """Predict every person (chunks of :data:`IMAGES_PER_CHUNK` images, crops batched).

    With ``boxes="gt"`` each person's crop is its ground-truth box (a LSP person with fewer than 2 labelled joints
    has none and gets no prediction); with ``"detector"`` the detected person nearest to the annotated one is kept
    (none found: a miss). An unreadable image is skipped (recorded) and its person left out.
    """
    run = SinglePersonRun([], [], [], [])
    total, done = len(persons), 0
    start = time.perf_counter()
    for lo in range(0, total, IMAGES_PER_CHUNK):
        chunk, images = [], []
        for person in persons[lo:lo + IMAGES_PER_CHUNK]:
            try:
                images.append(read_image(person.path))
                chunk.append(person)
            except InputError as exc:
                run.skipped.append((str(person.path), str(exc)))
                if progress:
                    progress(done, total, f"{person.path}: {exc}")
        given = None
        if boxes == "gt":
            given = []
            for person, image in zip(chunk, images):
                box = person.box
                if box is None:
                    h, w = image.shape[:2]
                    box = joints_box(np.c_[person.joints, person.labelled.astype(float)], w, h)
                if box is None:
                    given.append((np.zeros((0, 4), np.float32), np.zeros(0, np.float32)))
                else:
                    given.append((np.asarray(box, np.float32).reshape(1, 4), np.ones(1, np.float32)))
        results = estimator.predict(images, [str(p.path) for p in chunk], boxes=given) if chunk else []
        for person, result in zip(chunk, results):
            pick = (0 if len(result) else None) if boxes == "gt" else _nearest(result, person)
            run.persons.append(person)
            if pick is None:
                run.keypoints.append(None)
                run.boxes.append(None)
                run.missed += boxes == "detector"
                continue
            run.keypoints.append(np.c_[result.keypoints[pick], result.keypoint_scores[pick]].astype(np.float64))
            run.boxes.append(result.boxes[pick].astype(np.float64))
        done = min(total, lo + IMAGES_PER_CHUNK)
        if progress:
            progress(done, total, None)
    run.seconds = time.perf_counter() - start
    return run


def benchmark_predictions(run: SinglePersonRun, mapping: JointMapping, model_set: KeypointSet,
                          benchmark_set: KeypointSet, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The run's predictions on the benchmark's keypoints: ``(pred (N, K_b, 2) pixels + offset, NaN where the model
    has no such joint or found nobody; has (K_b,) bool: the benchmark joints the model predicts)``."""
    n = len(run.persons)
    pred = np.full((n, benchmark_set.num_keypoints, 2), np.nan)
    has = np.zeros(benchmark_set.num_keypoints, bool)
    for s, t in mapping.pairs:
        has[t] = True
        for i, kp in enumerate(run.keypoints):
            if kp is not None:
                pred[i, t] = kp[s, :2] + offset
    return pred, has


def _per_joint(scores: km.KeypointScores, names: Sequence[str], has: np.ndarray) -> dict:
    return {name: (None if not has[k] or not np.isfinite(scores.per_keypoint[k]) else float(scores.per_keypoint[k]))
            for k, name in enumerate(names)}


def _environment() -> dict:
    keep = ("date", "kanpose", "torch", "host", "cpu", "cpu_threads")
    return {k: v for k, v in base_settings(None, None, None).items() if k in keep}


def _predictions_json(run: SinglePersonRun, model_set: KeypointSet, benchmark: str) -> dict:
    return {"benchmark": benchmark, "keypoint_set": model_set.name, "keypoint_names": list(model_set.names),
            "coordinates": "x, y in 0-based pixels of the original image, then the keypoint score",
            "persons": [{"number": p.number, "image": p.path.name,
                         "box": None if b is None else [round(float(v), 4) for v in b],
                         "keypoints": None if k is None else [[float(v) for v in row] for row in k]}
                        for p, k, b in zip(run.persons, run.keypoints, run.boxes)]}


def evaluate_single_person(estimator, benchmark: str, persons: list[Person], boxes: str = "gt", out_dir=None,
                           progress: ProgressFn | None = None, data_settings: dict | None = None) -> dict:
    """Run and score ``lsp`` (PCK@0.2, torso) or ``mpii`` (PCKh@0.5, head) (protocol in the module docstring).

    Args:
        estimator: from :func:`make_single_person_estimator`. benchmark: ``"lsp"`` or ``"mpii"``.
        persons: from :func:`lsp_people` / :func:`mpii_people`. boxes: ``"gt"`` or ``"detector"``.
        out_dir: where ``predictions.json`` (the model's keypoints per person) and ``metrics.json`` go; None: not
            written. progress: ``progress(done, total, message)``. data_settings: recorded under ``settings``.

    Returns:
        The report (also ``metrics.json``): for LSP ``"PCK@0.2"``, for MPII ``"PCKh@0.5"`` and ``"PCKh@0.1"`` (fractions
        in [0, 1], None when nothing was scored), ``"per_joint"`` {name: value or None}, ``"joint_counts"``,
        ``"scored_joints"`` / ``"not_scored_joints"`` (names), MPII's ``"groups"``, ``"num_persons"``,
        ``"num_persons_scored"``, ``"num_persons_not_scored"`` (no torso / head size, or no ground-truth box),
        ``"num_missed"`` (detector found nobody), ``"num_skipped"``, ``"skipped"``, ``"seconds"``, ``"settings"``.

    Raises:
        UsageError: the model's keypoints cannot be scored on the benchmark's.
    """
    bench_set = LSP14 if benchmark == "lsp" else MPII16
    model_set = estimator.keypoints
    try:
        mapping = scoring_mapping(model_set, bench_set)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    was_training = getattr(estimator.pose_model, "training", None)
    try:
        if estimator.pose_model is not None:
            estimator.pose_model.eval()
        run = predict_single_person(estimator, persons, boxes, progress)
    finally:
        if was_training is not None:
            estimator.pose_model.train(was_training)
    offset = 1.0 if benchmark == "mpii" else 0.0  # MPII ground truth is in 1-based MATLAB pixels
    pred, has = benchmark_predictions(run, mapping, model_set, bench_set, offset)
    n = len(run.persons)
    gt = np.stack([p.joints + offset for p in run.persons]) if n else np.zeros((0, bench_set.num_keypoints, 2))
    labelled = np.stack([p.labelled for p in run.persons]) if n else np.zeros((0, bench_set.num_keypoints), bool)
    norm = np.array([p.norm for p in run.persons], dtype=np.float64)
    no_box = np.array([k is None for k in run.keypoints]) & (boxes == "gt")
    norm[no_box] = 0.0  # no ground-truth box: the person cannot be cropped, so it is not scored
    mask = labelled & has[None, :]
    names = list(bench_set.names)
    report: dict = {"benchmark": benchmark}
    if benchmark == "lsp":
        scores = km.pck(pred, gt, mask, norm, LSP_PCK_THR)
        report["PCK@0.2"] = _finite(scores.mean)
        normaliser = "torso: ‖left_shoulder − right_hip‖ of the annotation (DeepPose)"
        metric = "PCK@0.2: mean over joints of the fraction within 0.2 × torso (mmpose keypoint_pck_accuracy)"
    else:
        headline = mask.copy()
        headline[:, list(MPII_NOT_IN_MEAN)] = False
        scores = km.pckh(pred, gt, mask, norm, MPII_PCKH_THR)
        report["PCKh@0.5"] = _finite(km.pckh(pred, gt, headline, norm, MPII_PCKH_THR).overall)
        report["PCKh@0.1"] = _finite(km.pckh(pred, gt, headline, norm, 0.1).overall)
        per = _per_joint(scores, names, has)
        report["groups"] = {g: (None if any(per[j] is None for j in js) else sum(per[j] for j in js) / len(js))
                            for g, js in MPII_GROUPS.items()}
        normaliser = ("head: 0.6 × head-box diagonal where an entry has headbox, else ‖head_top − upper_neck‖ of the "
                      "annotation")
        metric = "PCKh@0.5: fraction of correct joints over all scored joints but pelvis and thorax (official MPII)"
    scorable = (norm > 0) & np.isfinite(norm)
    report.update({
        "per_joint": _per_joint(scores, names, has),
        "joint_counts": {name: int(c) for name, c in zip(names, scores.counts)},
        "scored_joints": [name for name, h in zip(names, has) if h],
        "not_scored_joints": [name for name, h in zip(names, has) if not h],
        "num_persons": n + len(run.skipped),
        "num_persons_scored": int((scorable & mask.any(1)).sum()),
        "num_persons_not_scored": int((~scorable).sum()),
        "num_missed": int(run.missed),
        "num_skipped": len(run.skipped),
        "skipped": [{"path": p, "reason": r} for p, r in run.skipped],
        "seconds": round(run.seconds, 3),
    })
    settings = {**estimator_settings(estimator), "boxes": _box_words(benchmark, boxes, estimator),
                "threshold": LSP_PCK_THR if benchmark == "lsp" else MPII_PCKH_THR, "normaliser": normaliser,
                "metric": metric, "mapping": f"{model_set.name} -> {bench_set.name}", **(data_settings or {}),
                **_environment()}
    report["settings"] = settings
    if out_dir is not None:
        out_dir = Path(out_dir)
        predictions = out_dir / "predictions.json"
        write_json_atomic(predictions, _predictions_json(run, model_set, benchmark))
        report["predictions_file"] = str(predictions)
        write_metrics(out_dir / "metrics.json", report)
    return report


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _box_words(benchmark: str, boxes: str, estimator) -> str:
    if boxes == "detector":
        source = (f"{estimator.yolo.name}, its own people" if getattr(estimator, "yolo", None) is not None
                  else estimator.box_source.name)
        return f"detector ({source}); the person nearest the annotated joints is scored"
    if benchmark == "lsp":
        return "gt (labelled joints' extent × 1.2, clipped to the image; crop padding 1.25)"
    return "gt (mmpose MPII box: centre − 1 moved down 15·scale px, side 200·scale px; crop padding 1.25)"


# ------------------------------------------------------------------------------------------------ CrowdPose, OCHuman
def open_crowdpose(ann_file, images_dir=None) -> CocoKeypointData:
    """Load a CrowdPose annotation file, checking it first (a ``crowdIndex`` on every image).

    Raises:
        InputError: missing or malformed file or images folder, an image without ``crowdIndex``.
    """
    data = CocoKeypointData(ann_file, images_dir)
    crowd_levels(data.coco.dataset, str(data.ann_file))
    return data


def crowdpose_joints(model_set: KeypointSet) -> tuple[JointMapping, list[int]]:
    """``(mapping, scored CrowdPose indices in order)`` of a model set. Raises UsageError when there is none."""
    try:
        mapping = scoring_mapping(model_set, CROWDPOSE14)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return mapping, sorted(t for _, t in mapping.pairs)


def to_crowdpose_results(results: list[dict], mapping: JointMapping, joints: list[int]) -> list[dict]:
    """COCO keypoint results of the model's set -> the scored CrowdPose joints (``joints`` order); the instance score
    is unchanged."""
    source = {t: s for s, t in mapping.pairs}
    out = []
    for r in results:
        kp = r["keypoints"]
        out.append({**r, "keypoints": [v for t in joints for v in kp[3 * source[t]:3 * source[t] + 3]]})
    return out


def results_joints(results: list[dict], where: str) -> list[int] | None:
    """The CrowdPose joints a results file holds: 14 keypoints -> all, 12 -> the limb joints (0–11).

    Raises:
        InputError: another count.
    """
    counts = {len(r["keypoints"]) // 3 for r in results}
    if not counts or counts == {CROWDPOSE14.num_keypoints}:
        return None
    if counts == {12}:
        return list(range(12))
    raise InputError(f"{where}: results have {', '.join(map(str, sorted(counts)))} keypoints per instance; "
                     f"CrowdPose results have 14 (all) or 12 (the limb joints, CrowdPose order)")


def evaluate_crowdpose(estimator, data: CocoKeypointData, image_ids: list[int] | None = None, out_dir=None,
                       progress: ProgressFn | None = None) -> dict:
    """Run a model on CrowdPose and score it (:func:`~kanpose_cli.core.evaluation.crowdpose_metric.score_crowdpose`):
    ``eval coco``'s boxes, rescoring and OKS-NMS, then the results mapped onto the CrowdPose joints the model has.

    Args:
        estimator: from :func:`~kanpose_cli.core.evaluation.evaluator.make_estimator` (``annotations=data``).
        data: from :func:`open_crowdpose`. image_ids: a subset (default all). out_dir: where ``results.json`` (the
            scored joints, CrowdPose order) and ``metrics.json`` go. progress: as ``eval coco``.

    Returns:
        The report: ``AP``, ``AP50``, ``AP75``, ``AR``, ``AR50``, ``AR75``, ``AP_easy``, ``AP_medium``, ``AP_hard``
        (-1: no person of that level), ``images_per_level``, ``scored_keypoints``, ``not_scored_keypoints``,
        ``num_results``, ``num_images``, ``num_skipped``, ``skipped``, ``instances_before_nms``, ``seconds``,
        ``summary``, ``settings``.

    Raises:
        UsageError: a model with no mapping onto CrowdPose. InputError: as :func:`score_crowdpose`.
    """
    mapping, joints = crowdpose_joints(estimator.keypoints)
    ids = data.select(image_ids)
    model = estimator.pose_model
    was_training = model.training if model is not None else None
    try:
        if model is not None:
            model.eval()
        run = run_estimator(estimator, data, ids, progress=progress)
    finally:
        if model is not None:
            model.train(was_training)
    results = to_crowdpose_results(run.results, mapping, joints)
    metrics = score_crowdpose(data.coco.dataset, results, image_ids=run.evaluated_ids, joints=joints)
    report = {"benchmark": "crowdpose", **metrics,
              "not_scored_keypoints": [n for k, n in enumerate(CROWDPOSE14.names) if k not in joints],
              "num_results": len(results), "num_images": len(run.evaluated_ids), "num_skipped": len(run.skipped),
              "skipped": [{"path": p, "reason": r} for p, r in run.skipped],
              "instances_before_nms": run.instances_before_nms, "seconds": round(run.seconds, 3),
              "settings": {**estimator_settings(estimator), **base_settings(data.ann_file, data.images_dir, image_ids),
                           "metric": "CrowdPose AP (pycocotools COCOeval, OKS area 0.53·w·h, CrowdPose sigmas, "
                                     "crowd index split 0.2 / 0.8 as the official code)",
                           "mapping": f"{mapping.source} -> {mapping.target}"}}
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json_atomic(out_dir / "results.json", results)
        report["results_file"] = str(out_dir / "results.json")
        write_metrics(out_dir / "metrics.json", report)
    return report


def score_crowdpose_file(data: CocoKeypointData, results_file, out_dir=None, image_ids=None) -> dict:
    """Score an existing CrowdPose results JSON (14 or 12 keypoints, :func:`results_joints`); writes
    ``metrics.json`` into ``out_dir``."""
    from kanpose_cli.core.evaluation.coco_metric import load_results

    dets = load_results(results_file)
    joints = results_joints(dets, str(results_file))
    ids = data.select(image_ids)
    metrics = score_crowdpose(data.coco.dataset, dets, image_ids=ids, joints=joints)
    scored = set(range(CROWDPOSE14.num_keypoints) if joints is None else joints)
    report = {"benchmark": "crowdpose", **metrics,
              "not_scored_keypoints": [n for k, n in enumerate(CROWDPOSE14.names) if k not in scored],
              "num_images": len(ids),
              "settings": {"mode": "score-only", "results_file": str(results_file),
                           **base_settings(data.ann_file, data.images_dir, image_ids)}}
    if out_dir is not None:
        write_metrics(Path(out_dir) / "metrics.json", report)
    return report


def evaluate_ochuman(estimator, data: CocoKeypointData, image_ids: list[int] | None = None, out_dir=None,
                     progress: ProgressFn | None = None) -> dict:
    """OCHuman (Zhang et al., *Pose2Seg*, CVPR 2019): COCO keypoint AP with COCO's sigmas under ``eval coco``'s
    protocol (:func:`~kanpose_cli.core.evaluation.evaluator.evaluate`); ``metrics.json`` also says ``benchmark``.

    Raises:
        UsageError: a model that does not predict the 17 COCO keypoints (OCHuman's order).
    """
    from kanpose_cli.core.evaluation.evaluator import evaluate

    if estimator.keypoints.num_keypoints != 17:
        raise UsageError(f"OCHuman is scored on the 17 COCO keypoints; {estimator.name} predicts "
                         f"{estimator.keypoints.num_keypoints}")
    results_file = Path(out_dir) / "results.json" if out_dir is not None else None
    report = evaluate(estimator, data, data.images_dir, image_ids=image_ids, results_file=results_file,
                      progress=progress)
    report = {"benchmark": "ochuman", **report}
    if out_dir is not None:
        write_metrics(Path(out_dir) / "metrics.json", report)
    return report
