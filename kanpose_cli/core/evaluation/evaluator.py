"""COCO keypoint evaluation of top-down pose models (and of the ultralytics YOLO-pose peer) under one protocol.

Protocol (spec §1.5; reference: ViTPose ``TopDownCocoDataset.evaluate`` and mmpose 1.x ``CocoMetric`` with
``score_mode='bbox_keypoint'``, ``keypoint_score_thr=0.2``, ``nms_mode='oks_nms'``, ``nms_thr=0.9``):

1. Person boxes from one explicit source (:mod:`kanpose_cli.core.detect.boxes`, the same vocabulary as predict):
   ``gt`` (ground-truth boxes, score 1; see :mod:`kanpose_cli.core.data.coco`), a COCO detection-results JSON
   (``category_id == 1``, score ≥ ``box_thr``), the live YOLO detector at a low confidence (0.001), or ``none``.
2. Each box -> crop (aspect-ratio expansion, padding 1.25, UDP or standard affine per model) -> batched network,
   flip test on by default -> keypoints in original-image pixels (x before y).
3. Rescoring: instance score = box score × mean of the keypoint scores above 0.2 (0 if none)
   (:meth:`PoseResult.to_coco`).
4. OKS-NMS per image at OKS 0.9 with the keypoint set's sigmas (COCO's for COCO-17) and "area" = padded crop area
   ``w_roi · h_roi`` pixels² (:mod:`kanpose_cli.core.evaluation.oks_nms`).
5. pycocotools ``COCOeval(iouType='keypoints')`` (never our own AP; :mod:`kanpose_cli.core.evaluation.coco_metric`)
   with ``kpt_oks_sigmas`` from the model's keypoint set (any K):
   AP, AP50, AP75, APM, APL, AR, AR50, AR75, ARM, ARL in [0, 1] (-1 where the annotation file has no instance of that
   area range).

The numbers of steps 2–4 (padding, rescoring threshold, OKS-NMS threshold) are defined once in
:mod:`kanpose_cli.core.protocol`.

The YOLO-pose peer (``--model yolo:NAME``) uses its own boxes and keypoints and goes through steps 3–5
unchanged (its area for OKS-NMS is the same padded box area, aspect 0.75).

Steps 1–2 are one loop over a :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` (:func:`run_estimator`),
the same estimator predict, label, bench and the Python API use. Entry points: :func:`evaluate` (a ready
estimator), :func:`evaluate_model` (used by training for validation), :func:`evaluate_yolo_pose` and
:func:`~kanpose_cli.core.evaluation.coco_metric.score_results`.
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kanpose_cli.core.data.coco import CocoKeypointData
from kanpose_cli.core.data.sources import read_image
from kanpose_cli.core.data.transforms import box_to_center_size
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.evaluation.coco_metric import METRIC_NAMES, annotation_keypoints, score_results
from kanpose_cli.core.evaluation.oks_nms import oks_nms
from kanpose_cli.core.io import write_json_atomic
from kanpose_cli.core.keypoints import COCO17, KeypointSet, keypoint_set_from_coco
from kanpose_cli.core.protocol import BOX_PADDING, IMAGES_PER_CHUNK, OKS_NMS_THR, RESCORE_KPT_THR
from kanpose_cli.core.results import PoseResult

DEFAULT_DET_CONF = 0.001

ProgressFn = Callable[[int, int, "str | None"], None]
"""``progress(done_images, total_images, message)``; ``message`` is a skip notice (``"path: reason"``) or None."""


# ---------------------------------------------------------------------------------------------- inference loops
@dataclass
class EvalRun:
    """Predictions of one run: COCO ``results``, ``skipped`` ``(path, reason)``, counts, seconds of inference."""

    results: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    evaluated_ids: list[int] = field(default_factory=list)
    instances_before_nms: int = 0
    seconds: float = 0.0


def _chunks(seq: list, n: int):
    for start in range(0, len(seq), n):
        yield seq[start:start + n]


def _read_chunk(data: CocoKeypointData, ids: list[int], run: EvalRun, report) -> tuple[list[int], list[np.ndarray]]:
    ok_ids, images = [], []
    for i in ids:
        path = data.image(i).path
        try:
            images.append(read_image(path))
            ok_ids.append(i)
        except InputError as exc:
            run.skipped.append((str(path), str(exc)))
            report(f"{path}: {exc}")
    return ok_ids, images


def rescore_and_nms(result: PoseResult, image_id: int, areas: np.ndarray, nms_thr: float = OKS_NMS_THR) -> list[dict]:
    """COCO results of one image after rescoring (:meth:`PoseResult.to_coco`) and OKS-NMS.

    Args:
        result: poses in original-image pixels. areas: (N,) padded crop areas in pixels². nms_thr: OKS threshold
            (values ≥ 1 switch NMS off).
    """
    entries = result.to_coco(image_id)
    if not entries or nms_thr >= 1.0:
        return entries
    kpts = np.concatenate([result.keypoints, result.keypoint_scores[..., None]], axis=-1)
    keep = oks_nms(kpts, np.array([e["score"] for e in entries]), areas, nms_thr,
                   sigmas=result.keypoint_set.sigmas_array())
    return [entries[i] for i in keep]


def padded_areas(boxes: np.ndarray, aspect_ratio: float, padding: float = BOX_PADDING) -> np.ndarray:
    """(N,) areas ``w_roi · h_roi`` in pixels² of the padded, aspect-expanded crops of (N, 4) xyxy boxes."""
    _, sizes = box_to_center_size(np.asarray(boxes).reshape(-1, 4), aspect_ratio, padding)
    sizes = np.maximum(sizes, 1.0)
    return sizes[:, 0] * sizes[:, 1]


def check_same_keypoints(estimator, data: CocoKeypointData) -> None:
    """``eval coco`` scores the model's keypoints as they are: any K, with the model's set's OKS sigmas, but K must be
    the annotations'.

    Raises:
        UsageError: a model whose keypoint count differs from the annotations' (one line naming both).
    """
    k_model, k_ann = estimator.keypoints.num_keypoints, annotation_keypoints(data.coco)
    if k_ann and k_ann != k_model:
        raise UsageError(f"{estimator.name} predicts {k_model} keypoints ({estimator.keypoints.name}); the "
                         f"annotations of {data.ann_file.name} have {k_ann} per person")


def run_estimator(estimator, data: CocoKeypointData, image_ids: list[int], progress: ProgressFn | None = None,
                  nms_thr: float = OKS_NMS_THR) -> EvalRun:
    """Predict every image with a :class:`~kanpose_cli.core.inference.estimator.PoseEstimator`, then rescore and
    OKS-NMS each image's persons (area: the padded box area at the estimator's crop aspect ratio).

    Images are processed in chunks of :data:`IMAGES_PER_CHUNK` (their crops batched together). When the boxes are
    known without the pixels (``gt``, a detections file), only images with at least one box are read; the others
    count as evaluated with no result. An image that cannot be read is recorded in ``EvalRun.skipped`` and left out
    of ``evaluated_ids``; network errors propagate.

    The predictions are on the model's keypoint set; scoring them against annotations of another set (through a
    joint mapping) is the caller's business (:func:`check_same_keypoints` for ``eval coco``).
    """
    run, total, done = EvalRun(), len(image_ids), 0
    report = (lambda msg: progress(done, total, msg)) if progress else (lambda msg: None)
    source = estimator.box_source
    start = time.perf_counter()
    for chunk in _chunks(list(image_ids), IMAGES_PER_CHUNK):
        given = None
        if source is not None and not source.needs_images:
            paths = [str(data.image(i).path) for i in chunk]
            by_id = dict(zip(chunk, source([None] * len(chunk), paths, list(chunk))))
            run.evaluated_ids.extend(i for i in chunk if not len(by_id[i][0]))
            ids, images = _read_chunk(data, [i for i in chunk if len(by_id[i][0])], run, report)
            given = [by_id[i] for i in ids]
        else:
            ids, images = _read_chunk(data, chunk, run, report)
        results = estimator.predict(images, [str(data.image(i).path) for i in ids], ids, boxes=given) if ids else []
        for i, result in zip(ids, results):
            run.instances_before_nms += len(result)
            areas = padded_areas(result.boxes, estimator.aspect_ratio)
            run.results.extend(rescore_and_nms(result, i, areas, nms_thr))
            run.evaluated_ids.append(i)
        done += len(chunk)
        if progress:
            progress(done, total, None)
    run.seconds = time.perf_counter() - start
    run.evaluated_ids.sort()
    return run


# ------------------------------------------------------------------------------------------------- entry points
def _finish(run: EvalRun, data: CocoKeypointData, settings: dict, results_file, bootstrap: int = 0,
            keypoint_set: KeypointSet = COCO17) -> dict:
    """Score the run (OKS with ``keypoint_set``'s sigmas), write results + metrics.json (when ``results_file`` is
    given), return the report dict."""
    metrics = score_results(data.coco, run.results, image_ids=run.evaluated_ids, keypoint_set=keypoint_set,
                            bootstrap=bootstrap if run.results else 0) if run.evaluated_ids else {
        **{name: 0.0 for name in METRIC_NAMES}, "num_results": 0, "summary": "no image could be evaluated"}
    report = {
        **{name: metrics[name] for name in METRIC_NAMES},
        "num_results": len(run.results),
        "num_images": len(run.evaluated_ids),
        "num_skipped": len(run.skipped),
        "skipped": [{"path": p, "reason": r} for p, r in run.skipped],
        "instances_before_nms": run.instances_before_nms,
        "seconds": round(run.seconds, 3),
        "summary": metrics["summary"],
        **({"bootstrap": metrics["bootstrap"]} if "bootstrap" in metrics else {}),
        "settings": settings,
    }
    if results_file is not None:
        results_file = Path(results_file)
        write_json_atomic(results_file, run.results)
        report["results_file"] = str(results_file)
        write_metrics(results_file.parent / "metrics.json", report)
    return report


def write_metrics(path: str | Path, report: dict) -> Path:
    """Write ``metrics.json``: the ten stats, counts, skipped images and the exact settings."""
    path = Path(path)
    data = {k: v for k, v in report.items() if k != "summary"}
    write_json_atomic(path, data)
    return path


def base_settings(ann_file, images_dir, image_ids: list[int]) -> dict:
    """Settings shared by every mode (data, date, versions)."""
    from kanpose_cli import __version__

    return {
        "ann_file": str(ann_file), "images_dir": str(images_dir) if images_dir is not None else None,
        "image_ids": "all" if image_ids is None else list(image_ids),
        "oks_nms_thr": OKS_NMS_THR,
        "score_mode": f"box score × mean keypoint score > {RESCORE_KPT_THR:g} (bbox_keypoint)",
        "padding": BOX_PADDING, "metric": "pycocotools COCOeval iouType=keypoints",
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "kanpose": __version__, "torch": torch.__version__, "host": platform.node(),
        "cpu": _cpu_name(), "cpu_threads": torch.get_num_threads(),
    }


def _cpu_name() -> str:
    """CPU model from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def score_existing(data: CocoKeypointData, dets: list[dict], results_file, run_dir, images_dir,
                   image_ids: list[int] | None, bootstrap: int = 0) -> dict:
    """Score already-loaded results (:func:`score_results`; ``bootstrap`` resamples of AP over images when > 0) and
    write ``metrics.json`` into ``run_dir``."""
    kset = keypoint_set_from_coco(data.coco.dataset, str(data.ann_file))  # the file's set: its OKS sigmas
    report = score_results(data.coco, dets, image_ids=image_ids, keypoint_set=kset, bootstrap=bootstrap if dets else 0)
    report["num_images"] = len(image_ids) if image_ids is not None else len(data.image_ids)  # as a model run's
    report["settings"] = {"mode": "score-only", "results_file": str(results_file),
                          **base_settings(data.ann_file, images_dir, image_ids)}
    write_metrics(Path(run_dir / "metrics.json"), report)
    return report


def make_estimator(model=None, weights=None, boxes: str | None = None, detector: str | None = None,
                   annotations=None, device="cpu", flip: bool = True, batch: int = 32,
                   det_conf: float = DEFAULT_DET_CONF, box_thr: float = 0.0, backend: str = "auto"):
    """The :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` of ``kanpose eval coco``: boxes ``gt`` unless
    told otherwise (``yolo:`` models find their own), the detector at confidence ``det_conf``, detections-file boxes
    with score ≥ ``box_thr``, the flip test on, the pose network on ``backend``.

    Raises:
        As :class:`~kanpose_cli.core.inference.estimator.PoseEstimator`.
    """
    from kanpose_cli.core.inference.estimator import PoseEstimator, is_yolo_model

    if boxes is None and not is_yolo_model(model):
        boxes = "gt"
    return PoseEstimator(model, weights, detector, boxes, device=device, flip=flip, batch=batch, conf=det_conf,
                         box_thr=box_thr, annotations=annotations, backend=backend)


def estimator_settings(estimator) -> dict:
    """What an evaluation records about its estimator: model, weights, box source, flip, input size, device,
    backend."""
    if estimator.yolo is not None:
        y = estimator.yolo
        return {"model": estimator.name, "weights": estimator.weights_label, "boxes": estimator.boxes_label,
                "flip": False, "input_size": [y.imgsz, y.imgsz], "device": str(estimator.device), "max_det": y.max_det,
                "iou": y.iou}
    model = estimator.pose_model
    return {"model": estimator.name, "weights": estimator.weights_label,
            "boxes": estimator.box_source.description, "flip": bool(estimator.flip),
            "input_size": list(model.input_size), "udp": bool(model.spec.udp), "device": str(estimator.device),
            "backend": estimator.backend, "batch_size": estimator.batch, "box_thr": estimator.box_thr}


def evaluate(estimator, ann_file, images_dir, image_ids: list[int] | None = None, results_file=None,
             progress: ProgressFn | None = None, nms_thr: float = OKS_NMS_THR, bootstrap: int = 0) -> dict:
    """Evaluate a ready :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` on a COCO keypoint dataset
    (protocol in the module docstring; the estimator's box source is step 1, its flip setting step 2).

    Args:
        estimator: the estimator (its ``gt`` box source, if any, must use the same annotations).
        ann_file: COCO keypoint annotation JSON (or a loaded ``CocoKeypointData``). images_dir: folder of the
            images (``file_name``).
        image_ids: evaluate only these images (default: all images of ``ann_file``).
        results_file: where to write the COCO keypoint-results JSON; ``metrics.json`` goes next to it.
        progress: ``progress(done, total, message)`` after each chunk and for each skipped image.
        nms_thr: OKS-NMS threshold (0.9; ≥ 1 disables).
        bootstrap: when > 0, also a bootstrap of AP over the evaluated images with this many resamples
            (:func:`~kanpose_cli.core.evaluation.coco_metric.bootstrap_ap`), reported under ``bootstrap``.

    Returns:
        dict with the ten COCO stats ``AP … ARL`` (floats in [0, 1]), ``num_results``, ``num_images`` (evaluated),
        ``num_skipped``, ``skipped`` (``[{"path", "reason"}]``), ``instances_before_nms``, ``seconds``, ``summary``
        (pycocotools' text) and ``settings`` (everything needed to reproduce the number), plus ``results_file``.
        Skipped images are left out of the COCOeval image set.

    Raises:
        InputError: missing/malformed annotation file or images folder.
    """
    data = ann_file if isinstance(ann_file, CocoKeypointData) else CocoKeypointData(ann_file, images_dir)
    ids = data.select(image_ids)
    check_same_keypoints(estimator, data)
    model = estimator.pose_model
    was_training = model.training if model is not None else None
    try:
        if model is not None:
            model.eval()
        run = run_estimator(estimator, data, ids, progress=progress, nms_thr=nms_thr)
    finally:
        if model is not None:
            model.train(was_training)
    settings = {**estimator_settings(estimator), **base_settings(data.ann_file, data.images_dir, image_ids),
                "keypoint_set": estimator.keypoints.name}
    return _finish(run, data, settings, results_file, bootstrap=bootstrap, keypoint_set=estimator.keypoints)


def evaluate_model(model, ann_file, images_dir, boxes: str = "gt", flip: bool = True, device="cpu",
                   batch_size: int = 32, image_ids: list[int] | None = None, results_file=None,
                   progress: ProgressFn | None = None, box_thr: float = 0.0, detector: str | None = None,
                   det_conf: float = DEFAULT_DET_CONF, nms_thr: float = OKS_NMS_THR) -> dict:
    """Evaluate a kanpose pose model on a COCO keypoint dataset (protocol in the module docstring).

    Args:
        model: a :class:`~kanpose_cli.core.models.registry.PoseModel` (moved to ``device``, set to eval mode, and
            put back in its training mode afterwards).
        ann_file, images_dir: as :func:`evaluate`.
        boxes: ``"gt"``, ``"detector"`` (live YOLO at ``det_conf``, weights ``detector``), ``"none"`` or a COCO
            detection-results JSON path (person boxes with score ≥ ``box_thr``).
        flip: flip test. device: torch device (``"cpu"``, ``"cuda:0"``). batch_size: crops per forward pass.
        image_ids, results_file, progress, nms_thr: as :func:`evaluate`.

    Returns:
        As :func:`evaluate`.

    Raises:
        InputError: missing/malformed annotation file, images folder or detection file. UsageError: bad ``boxes``.
        WeightsError: detector weights missing.
    """
    from kanpose_cli.core.inference.estimator import PoseEstimator

    data = CocoKeypointData(ann_file, images_dir)
    was_training = model.training
    try:
        est = PoseEstimator(model, boxes=boxes, detector=detector, device=device, flip=flip, batch=batch_size,
                            conf=det_conf, box_thr=box_thr, annotations=data)
        return evaluate(est, data, images_dir, image_ids=image_ids, results_file=results_file, progress=progress,
                        nms_thr=nms_thr)
    finally:
        model.train(was_training)


def evaluate_yolo_pose(weights, ann_file, images_dir, device="cpu", conf: float = DEFAULT_DET_CONF,
                       image_ids: list[int] | None = None, results_file=None, progress: ProgressFn | None = None,
                       nms_thr: float = OKS_NMS_THR, imgsz: int = 640) -> dict:
    """Evaluate an ultralytics YOLO pose model end to end (own boxes, conf ≥ ``conf``) under the same protocol.

    Args and return value as :func:`evaluate_model`; ``weights`` is a name such as ``yolo11n-pose.pt`` or a path
    (run as ``PoseEstimator("yolo:" + weights)``).

    Raises:
        WeightsError: weights missing or not a pose model. InputError: as :func:`evaluate_model`.
    """
    from kanpose_cli.core.inference.estimator import YOLO_PREFIX, PoseEstimator

    est = PoseEstimator(f"{YOLO_PREFIX}{weights}", device=device, conf=conf, det_imgsz=imgsz)
    return evaluate(est, ann_file, images_dir, image_ids=image_ids, results_file=results_file, progress=progress,
                    nms_thr=nms_thr)
