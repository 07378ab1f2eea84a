"""COCO keypoint evaluation of top-down pose models (and of the ultralytics YOLO-pose peer) under one protocol.

Protocol (spec §1.5; reference: ViTPose ``TopDownCocoDataset.evaluate`` and mmpose 1.x ``CocoMetric`` with
``score_mode='bbox_keypoint'``, ``keypoint_score_thr=0.2``, ``nms_mode='oks_nms'``, ``nms_thr=0.9``):

1. Person boxes from one explicit source: ``gt`` (ground-truth boxes, score 1; see
   :mod:`kanpose_cli.core.data.coco`), a COCO detection-results JSON (``category_id == 1``, score ≥ ``box_thr``),
   or the live YOLO detector at a low confidence (0.001).
2. Each box -> crop (aspect-ratio expansion, padding 1.25, UDP or standard affine per model) -> batched network,
   flip test on by default -> keypoints in original-image pixels (x before y).
3. Rescoring: instance score = box score × mean of the keypoint scores above 0.2 (0 if none)
   (:meth:`PoseResult.to_coco`).
4. OKS-NMS per image at OKS 0.9 with the COCO sigmas and "area" = padded crop area ``w_roi · h_roi`` pixels²
   (:mod:`kanpose_cli.core.engine.oks_nms`).
5. pycocotools ``COCOeval(iouType='keypoints')`` (never our own AP): AP, AP50, AP75, APM, APL, AR, AR50, AR75,
   ARM, ARL in [0, 1] (-1 where the annotation file has no instance of that area range).

The YOLO-pose peer (:func:`evaluate_yolo_pose`) uses its own boxes and keypoints and goes through steps 3–5
unchanged (its area for OKS-NMS is the same padded box area, aspect 0.75).

Public API used by training for validation: :func:`evaluate_model` and :func:`score_results`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from kanpose_cli.core.data.coco import CocoKeypointData, quiet_coco
from kanpose_cli.core.data.sources import read_image
from kanpose_cli.core.data.transforms import box_to_center_size, crop_to_image
from kanpose_cli.core.engine.oks_nms import oks_nms
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.io import write_json_atomic
from kanpose_cli.core.results import PoseResult

METRIC_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
OKS_NMS_THR = 0.9
RESCORE_KPT_THR = 0.2  # applied inside PoseResult.to_coco
PADDING = 1.25
DEFAULT_DET_CONF = 0.001
IMAGES_PER_CHUNK = 8  # images read / detected together; crops of a chunk go through the network in batches

ProgressFn = Callable[[int, int, "str | None"], None]
"""``progress(done_images, total_images, message)``; ``message`` is a skip notice (``"path: reason"``) or None."""


# ----------------------------------------------------------------------------------------------------- scoring
def load_results(results: list | str | Path) -> list[dict]:
    """COCO keypoint results from a list or a JSON file, checked for the fields COCOeval needs.

    Each entry: ``image_id`` int, ``category_id`` int, ``keypoints`` flat ``x, y, score`` × K (original-image
    pixels), ``score`` float. Entries are copied (pycocotools mutates what it loads).

    Raises:
        InputError: file missing, not JSON, not a list, or an entry lacking a field.
    """
    where = "results"
    if not isinstance(results, list):
        path = Path(results).expanduser()
        where = str(path)
        if not path.is_file():
            raise InputError(f"results file not found: {path}")
        try:
            results = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read results file {path}: {exc}") from None
        if not isinstance(results, list):
            raise InputError(f"{path}: expected a JSON list of COCO keypoint results")
    out = []
    for n, r in enumerate(results):
        if not isinstance(r, dict) or any(k not in r for k in ("image_id", "category_id", "keypoints", "score")):
            raise InputError(f"{where}: entry {n} is not a COCO keypoint result "
                             f"(needs image_id, category_id, keypoints, score)")
        kp = r["keypoints"]
        if not isinstance(kp, list) or len(kp) == 0 or len(kp) % 3:
            raise InputError(f"{where}: entry {n} has keypoints of length {len(kp) if isinstance(kp, list) else '?'}"
                             f" (expected x, y, score × K)")
        out.append(dict(r))
    return out


def score_results(ann_file, results: list | str | Path, image_ids: list[int] | None = None) -> dict:
    """Score COCO keypoint results with pycocotools ``COCOeval(iouType='keypoints')``.

    Args:
        ann_file: COCO keypoint annotation JSON path (or a ``pycocotools.coco.COCO`` already loaded).
        results: list of result dicts or a results JSON path (see :func:`load_results`).
        image_ids: evaluate only these images (COCOeval ``params.imgIds``); default all images of ``ann_file``.

    Returns:
        ``{"AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"}`` floats in [0, 1] (-1 where the
        ground truth has no instance of that area range), plus ``"num_results"`` and ``"summary"`` (pycocotools'
        printed table, captured; nothing reaches stdout). Empty results score 0.

    Raises:
        InputError: unreadable annotation/results, results for images not in the annotation file, or a keypoint
            count different from the annotation's.
    """
    from pycocotools.cocoeval import COCOeval

    coco_gt = ann_file if hasattr(ann_file, "loadRes") else quiet_coco(ann_file)
    dets = load_results(results)
    known = set(coco_gt.getImgIds())
    unknown = sorted({int(d["image_id"]) for d in dets} - known)
    if unknown:
        raise InputError(f"results refer to {len(unknown)} image id(s) not in the annotation file "
                         f"(e.g. {', '.join(map(str, unknown[:3]))})")
    ids = sorted(known) if image_ids is None else sorted(int(i) for i in image_ids)
    if not dets:
        metrics = {name: 0.0 for name in METRIC_NAMES}
        return {**metrics, "num_results": 0, "summary": "no results: every metric is 0"}
    k_gt = _num_keypoints(coco_gt)
    bad = next((d for d in dets if k_gt and len(d["keypoints"]) != 3 * k_gt), None)
    if bad is not None:
        raise InputError(f"results have {len(bad['keypoints']) // 3} keypoints per instance, the annotations {k_gt}")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    metrics = {name: float(v) for name, v in zip(METRIC_NAMES, ev.stats)}
    summary = "\n".join(line for line in buf.getvalue().splitlines() if "Average" in line)
    return {**metrics, "num_results": len(dets), "summary": summary}


def _num_keypoints(coco_gt) -> int:
    for cat in coco_gt.dataset.get("categories", []) or []:
        if cat.get("keypoints"):
            return len(cat["keypoints"])
    for ann in coco_gt.dataset.get("annotations", []):
        if ann.get("keypoints"):
            return len(ann["keypoints"]) // 3
    return 0


# ------------------------------------------------------------------------------------------------ box sources
class BoxSource(Protocol):
    """Person boxes for a chunk of images: ``(images BGR, ids) -> [(boxes (N, 4) xyxy px, scores (N,))]``."""

    name: str
    needs_images: bool

    def __call__(self, images: list[np.ndarray | None],
                 image_ids: list[int]) -> list[tuple[np.ndarray, np.ndarray]]: ...


class GtBoxSource:
    """``--boxes gt``: ground-truth person boxes, score 1 (convention in :mod:`kanpose_cli.core.data.coco`)."""

    needs_images = False

    def __init__(self, data: CocoKeypointData):
        self.data, self.name = data, "gt (ground-truth person boxes, score 1)"

    def __call__(self, images, image_ids):
        return [self.data.gt_boxes(i) for i in image_ids]


class FileBoxSource:
    """``--boxes FILE``: a COCO detection-results JSON (person category, score ≥ ``box_thr``), matched by id."""

    needs_images = False

    def __init__(self, path: str | Path, box_thr: float = 0.0):
        from kanpose_cli.core.detect.base import BoxFileDetector

        self.file = BoxFileDetector(path, score_thr=box_thr)
        self.name = f"file {Path(path).name} (score ≥ {box_thr:g})"

    def __call__(self, images, image_ids):
        return [self.file.boxes_for(i) for i in image_ids]


class DetectorBoxSource:
    """``--boxes detector``: the live YOLO person detector (:class:`YoloPersonDetector`) at confidence ``conf``."""

    needs_images = True

    def __init__(self, weights: str | None = None, conf: float = DEFAULT_DET_CONF, device: str = "cpu"):
        from kanpose_cli.core.detect.yolo import DEFAULT_DETECTOR, YoloPersonDetector

        self.detector = YoloPersonDetector(weights or DEFAULT_DETECTOR, conf=conf, device=str(device))
        self.name = f"detector {self.detector.weights.name} (conf ≥ {conf:g})"

    def __call__(self, images, image_ids):
        return self.detector.predict_batch(images)


def make_box_source(boxes: str | Path, data: CocoKeypointData, box_thr: float = 0.0, detector: str | None = None,
                    det_conf: float = DEFAULT_DET_CONF, device: str = "cpu") -> BoxSource:
    """``"gt"``, ``"detector"`` or the path of a COCO detection-results JSON -> a box source.

    Raises:
        UsageError: any other value (not gt/detector and not an existing file).
        InputError: unreadable detection file. WeightsError: detector weights missing.
    """
    value = str(boxes)
    if value.lower() == "gt":
        return GtBoxSource(data)
    if value.lower() == "detector":
        return DetectorBoxSource(detector, det_conf, device)
    if Path(value).expanduser().is_file():
        return FileBoxSource(Path(value).expanduser(), box_thr)
    raise UsageError(f"unknown --boxes value {value!r}: expected gt, detector, or an existing COCO "
                     f"detection-results JSON file")


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


def padded_areas(boxes: np.ndarray, aspect_ratio: float, padding: float = PADDING) -> np.ndarray:
    """(N,) areas ``w_roi · h_roi`` in pixels² of the padded, aspect-expanded crops of (N, 4) xyxy boxes."""
    _, sizes = box_to_center_size(np.asarray(boxes).reshape(-1, 4), aspect_ratio, padding)
    sizes = np.maximum(sizes, 1.0)
    return sizes[:, 0] * sizes[:, 1]


def run_topdown(model, data: CocoKeypointData, image_ids: list[int], box_source: BoxSource, flip: bool = True,
                device: torch.device | str = "cpu", batch_size: int = 32, progress: ProgressFn | None = None,
                nms_thr: float = OKS_NMS_THR) -> EvalRun:
    """Predict every image with a kanpose :class:`PoseModel` on the boxes of ``box_source``.

    Images are processed in chunks of :data:`IMAGES_PER_CHUNK`; the crops of a chunk go through the network
    ``batch_size`` at a time. An image that cannot be read or cropped is recorded in ``EvalRun.skipped`` and left
    out of ``evaluated_ids``; network errors propagate.
    """
    from kanpose_cli.core.engine.pipeline import TopDownPipeline, make_crops

    pipeline = TopDownPipeline(model, torch.device(device), flip=flip, batch_size=batch_size)
    H, W = model.input_size
    run, total, done = EvalRun(), len(image_ids), 0
    report = (lambda msg: progress(done, total, msg)) if progress else (lambda msg: None)
    start = time.perf_counter()
    for chunk in _chunks(list(image_ids), IMAGES_PER_CHUNK):
        if box_source.needs_images:
            ids, images = _read_chunk(data, chunk, run, report)
            box_lists = box_source(images, ids) if ids else []
        else:  # only read images that have boxes
            box_lists_all = box_source([None] * len(chunk), chunk)
            with_boxes = [i for i, (b, _) in zip(chunk, box_lists_all) if len(b)]
            run.evaluated_ids.extend(i for i, (b, _) in zip(chunk, box_lists_all) if not len(b))
            ids, images = _read_chunk(data, with_boxes, run, report)
            by_id = dict(zip(chunk, box_lists_all))
            box_lists = [by_id[i] for i in ids]
        per_image, crops = [], []
        for i, image, (boxes, scores) in zip(ids, images, box_lists):
            try:
                c, centers, sizes = make_crops(image, boxes, (H, W), model.spec.udp, PADDING)
            except Exception as exc:  # noqa: BLE001 - report and go on
                path = str(data.image(i).path)
                run.skipped.append((path, f"cannot crop: {exc}"))
                report(f"{path}: cannot crop: {exc}")
                continue
            per_image.append((i, image.shape[:2], boxes, scores, centers, sizes, len(c)))
            crops.append(c)
        if crops and sum(len(c) for c in crops):
            kpts_all, scores_all = pipeline.predict_crops(np.concatenate(crops))
        else:
            kpts_all, scores_all = np.zeros((0, model.keypoints.num_keypoints, 2)), np.zeros((0, 0))
        offset = 0
        for i, shape, boxes, scores, centers, sizes, n in per_image:
            k, s = kpts_all[offset:offset + n], scores_all[offset:offset + n]
            offset += n
            kpts_img = crop_to_image(k, centers, sizes, (W, H), udp=model.spec.udp) if n else k
            result = PoseResult(boxes, scores, kpts_img, s, shape, keypoint_set=model.keypoints)
            run.instances_before_nms += n
            run.results.extend(rescore_and_nms(result, i, sizes[:, 0] * sizes[:, 1] if n else np.zeros(0), nms_thr))
            run.evaluated_ids.append(i)
        done += len(chunk)
        if progress:
            progress(done, total, None)
    run.seconds = time.perf_counter() - start
    run.evaluated_ids.sort()
    return run


def run_yolo_pose(estimator, data: CocoKeypointData, image_ids: list[int], progress: ProgressFn | None = None,
                  nms_thr: float = OKS_NMS_THR, aspect_ratio: float = 0.75) -> EvalRun:
    """Predict every image with a :class:`YoloPoseEstimator` (own boxes and keypoints), then rescoring and OKS-NMS
    as for kanpose models (area: the padded box area at ``aspect_ratio``)."""
    from kanpose_cli.core.keypoints import COCO17

    run, total, done = EvalRun(), len(image_ids), 0
    report = (lambda msg: progress(done, total, msg)) if progress else (lambda msg: None)
    start = time.perf_counter()
    for chunk in _chunks(list(image_ids), IMAGES_PER_CHUNK):
        ids, images = _read_chunk(data, chunk, run, report)
        outputs = estimator.predict_batch(images) if ids else []
        for i, image, (boxes, scores, kpts, kscores) in zip(ids, images, outputs):
            if kpts.shape[1] != COCO17.num_keypoints:
                raise UsageError(f"{estimator.name} predicts {kpts.shape[1]} keypoints; COCO evaluation needs 17")
            result = PoseResult(boxes, scores, kpts, kscores, image.shape[:2], keypoint_set=COCO17)
            run.instances_before_nms += len(result)
            run.results.extend(rescore_and_nms(result, i, padded_areas(boxes, aspect_ratio), nms_thr))
            run.evaluated_ids.append(i)
        done += len(chunk)
        if progress:
            progress(done, total, None)
    run.seconds = time.perf_counter() - start
    run.evaluated_ids.sort()
    return run


# ------------------------------------------------------------------------------------------------- entry points
def _finish(run: EvalRun, data: CocoKeypointData, settings: dict, results_file) -> dict:
    """Score the run, write results + metrics.json (when ``results_file`` is given), return the report dict."""
    metrics = score_results(data.coco, run.results, image_ids=run.evaluated_ids) if run.evaluated_ids else {
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
        "oks_nms_thr": OKS_NMS_THR, "score_mode": "box score × mean keypoint score > 0.2 (bbox_keypoint)",
        "padding": PADDING, "metric": "pycocotools COCOeval iouType=keypoints",
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


def evaluate_model(model, ann_file, images_dir, boxes: str = "gt", flip: bool = True, device="cpu",
                   batch_size: int = 32, image_ids: list[int] | None = None, results_file=None,
                   progress: ProgressFn | None = None, box_thr: float = 0.0, detector: str | None = None,
                   det_conf: float = DEFAULT_DET_CONF, nms_thr: float = OKS_NMS_THR) -> dict:
    """Evaluate a kanpose pose model on a COCO keypoint dataset (protocol in the module docstring).

    Args:
        model: a :class:`~kanpose_cli.core.models.registry.PoseModel` (moved to ``device``, set to eval mode).
        ann_file: COCO keypoint annotation JSON. images_dir: folder of the images (``file_name``).
        boxes: ``"gt"``, ``"detector"`` (live YOLO at ``det_conf``, weights ``detector``) or a COCO
            detection-results JSON path (person boxes with score ≥ ``box_thr``).
        flip: flip test. device: torch device (``"cpu"``, ``"cuda:0"``). batch_size: crops per forward pass.
        image_ids: evaluate only these images (default: all images of ``ann_file``).
        results_file: where to write the COCO keypoint-results JSON; ``metrics.json`` goes next to it.
        progress: ``progress(done, total, message)`` after each chunk and for each skipped image.
        nms_thr: OKS-NMS threshold (0.9; ≥ 1 disables).

    Returns:
        dict with the ten COCO stats ``AP … ARL`` (floats in [0, 1]), ``num_results``, ``num_images`` (evaluated),
        ``num_skipped``, ``skipped`` (``[{"path", "reason"}]``), ``instances_before_nms``, ``seconds``, ``summary``
        (pycocotools' text) and ``settings`` (everything needed to reproduce the number), plus ``results_file``.
        Skipped images are left out of the COCOeval image set.

    Raises:
        InputError: missing/malformed annotation file, images folder or detection file. UsageError: bad ``boxes``.
        WeightsError: detector weights missing.
    """
    data = CocoKeypointData(ann_file, images_dir)
    ids = data.select(image_ids)
    box_source = make_box_source(boxes, data, box_thr, detector, det_conf, str(device))
    was_training = model.training
    try:
        run = run_topdown(model, data, ids, box_source, flip=flip, device=device, batch_size=batch_size,
                          progress=progress, nms_thr=nms_thr)
    finally:
        model.train(was_training)
    settings = {
        "model": model.name, "weights": getattr(model, "weights_label", "?"), "boxes": box_source.name,
        "flip": bool(flip), "input_size": list(model.input_size), "udp": bool(model.spec.udp),
        "device": str(device), "batch_size": batch_size, "box_thr": box_thr,
        **base_settings(data.ann_file, data.images_dir, image_ids),
    }
    return _finish(run, data, settings, results_file)


def evaluate_yolo_pose(weights, ann_file, images_dir, device="cpu", conf: float = DEFAULT_DET_CONF,
                       image_ids: list[int] | None = None, results_file=None, progress: ProgressFn | None = None,
                       nms_thr: float = OKS_NMS_THR, imgsz: int = 640) -> dict:
    """Evaluate an ultralytics YOLO pose model end to end (own boxes, conf ≥ ``conf``) under the same protocol.

    Args and return value as :func:`evaluate_model`; ``weights`` is a name such as ``yolo11n-pose.pt``, a path,
    or a ready :class:`~kanpose_cli.core.detect.yolo.YoloPoseEstimator` (then ``conf``, ``device`` and ``imgsz``
    are its own).

    Raises:
        WeightsError: weights missing or not a pose model. InputError: as :func:`evaluate_model`.
    """
    data = CocoKeypointData(ann_file, images_dir)
    ids = data.select(image_ids)
    if isinstance(weights, (str, Path)):
        from kanpose_cli.core.detect.yolo import YoloPoseEstimator

        est = YoloPoseEstimator(str(weights), conf=conf, device=str(device), imgsz=imgsz)
    else:
        est, conf, device, imgsz = weights, weights.conf, weights.device, weights.imgsz
    run = run_yolo_pose(est, data, ids, progress=progress, nms_thr=nms_thr)
    settings = {
        "model": f"yolo:{est.weights.name}", "weights": str(est.weights),
        "boxes": f"own (YOLO pose boxes, conf ≥ {conf:g})", "flip": False, "input_size": [imgsz, imgsz],
        "device": str(device), "max_det": est.max_det, "iou": est.iou,
        **base_settings(data.ann_file, data.images_dir, image_ids),
    }
    return _finish(run, data, settings, results_file)
