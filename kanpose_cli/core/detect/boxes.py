"""Box sources: where the person boxes of a top-down run come from. **Built in one place**, :func:`make_box_source`,
for every command (predict, eval, label, bench, export) and the Python API.

One vocabulary everywhere (the ``--boxes`` and ``--detector`` options):

========================  =====================================================================================
``--boxes detector``      the YOLO person detector named by ``--detector`` (weights name or path; the default of
                          predict and label). ``--detector none`` turns it into ``none``.
``--boxes none``          the whole image is one person (box ``0, 0, W, H``, score 1): crops, single-person photos.
``--boxes gt``            ground-truth person boxes of a COCO keypoint annotation file, score 1 (the default of
                          eval; needs the annotations, so it is only available where a dataset is given).
``--boxes FILE.json``     a COCO detection-results JSON (``[{"image_id", "category_id", "bbox": [x, y, w, h],
                          "score"}]``), person entries with score ≥ the threshold, matched by image id (from the
                          COCO id in the file name when the caller has no id).
========================  =====================================================================================

Every source returns, per image, ``(boxes (N, 4) float32 x1, y1, x2, y2 in original-image pixels, scores (N,)
float32 in [0, 1])``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from kanpose_cli.core.detect.base import BoxFileDetector, WholeImageDetector, image_id_from_path
from kanpose_cli.core.detect.yolo import DEFAULT_DETECTOR  # yolo.py imports ultralytics only when a model is built
from kanpose_cli.core.errors import InputError, UsageError

Boxes = tuple[np.ndarray, np.ndarray]


class BoxSource(Protocol):
    """Person boxes for a batch of images.

    Attributes:
        kind: ``detector``, ``none``, ``gt`` or ``file``.
        name: short label written into predict's JSON header (``"YOLO yolo11n-pose.pt"``, ``"none (whole image)"``).
        description: the label eval records as its ``boxes`` setting (``"detector yolo11n-pose.pt (conf ≥ 0.001)"``).
        needs_images: False when the boxes are known without the pixels (gt, file): callers may then skip reading
            images that have no box.

    Call: ``(images: list of (H, W, 3) uint8 BGR or None, paths: list[str], image_ids: list[int | None]) ->
    list[(boxes (N, 4) float32 xyxy original-image pixels, scores (N,) float32 in [0, 1])]``, one per image.
    """

    kind: str
    name: str
    description: str
    needs_images: bool

    def __call__(self, images: list[np.ndarray | None], paths: list[str],
                 image_ids: list[int | None]) -> list[Boxes]: ...


class DetectorBoxes:
    """The ultralytics YOLO person detector (:class:`~kanpose_cli.core.detect.yolo.YoloPersonDetector`), all images
    of a call in one batch.

    Args:
        weights: YOLO weights name or path. conf: minimum box score in [0, 1]. iou: NMS IoU. imgsz: input size in
            pixels (long side). device: torch device string. half: FP16 (CUDA). max_det: boxes per image.
        backend, fallback: see :class:`~kanpose_cli.core.detect.yolo.YoloPersonDetector`.

    Raises:
        WeightsError: weights not found or not loadable.
    """

    kind = "detector"
    needs_images = True

    def __init__(self, weights: str = DEFAULT_DETECTOR, conf: float = 0.25, iou: float = 0.7, imgsz: int = 640,
                 device: str = "cpu", half: bool = False, max_det: int = 100, backend: str = "torch",
                 fallback: bool = False):
        from kanpose_cli.core.detect.yolo import YoloPersonDetector

        self.detector = YoloPersonDetector(weights, conf=conf, iou=iou, imgsz=imgsz, device=str(device), half=half,
                                           max_det=max_det, backend=backend, fallback=fallback)
        self.name = self.detector.name
        self.description = f"detector {self.detector.weights.name} (conf ≥ {conf:g})"

    def __call__(self, images, paths, image_ids):
        return self.detector.predict_batch(list(images)) if len(images) else []


class WholeImageBoxes:
    """``none``: the whole image is one person (box ``0, 0, W, H``, score 1)."""

    kind = "none"
    needs_images = True
    name = WholeImageDetector.name
    description = "none (whole image, score 1)"

    def __init__(self):
        self._one = WholeImageDetector()

    def __call__(self, images, paths, image_ids):
        return [self._one(image) for image in images]


class GtBoxes:
    """``gt``: ground-truth person boxes of a COCO keypoint annotation file, score 1 (conventions in
    :mod:`kanpose_cli.core.data.coco`); images are matched by COCO id.

    Raises (on call):
        InputError: an image without a COCO id.
    """

    kind = "gt"
    needs_images = False
    name = "gt (ground-truth boxes, score 1)"
    description = "gt (ground-truth person boxes, score 1)"

    def __init__(self, data):
        self.data = data

    def __call__(self, images, paths, image_ids):
        return [self.data.gt_boxes(_image_id(i, p, "gt")) for i, p in zip(image_ids, paths)]


class FileBoxes:
    """``FILE.json``: boxes from a COCO detection-results JSON (person category, score ≥ ``score_thr``), matched by
    image id (the caller's, else the COCO id in the file name).

    Raises:
        InputError: file missing, unreadable or malformed; on call, an image whose id cannot be told.
    """

    kind = "file"
    needs_images = False

    def __init__(self, path: str | Path, score_thr: float = 0.0):
        self.path = Path(path).expanduser()
        self.file = BoxFileDetector(self.path, score_thr=score_thr)
        self.name = self.description = f"file {self.path.name} (score ≥ {score_thr:g})"

    def __call__(self, images, paths, image_ids):
        return [self.file.boxes_for(_image_id(i, p, "--boxes")) for i, p in zip(image_ids, paths)]


def _image_id(image_id: int | None, path: str, what: str) -> int:
    if image_id is None:
        image_id = image_id_from_path(path)
    if image_id is None:
        raise InputError(f"{what}: cannot tell the COCO image id of {Path(path).name} (expected digits in its name)")
    return int(image_id)


def parse_box_spec(boxes: str | Path | None = None, detector: str | None = None) -> tuple[str, str | None]:
    """``--boxes`` and ``--detector`` -> ``(kind, value)``: ``("detector", weights)``, ``("none", None)``,
    ``("gt", None)`` or ``("file", path)``.

    ``boxes`` None means ``detector``; ``detector`` None means :data:`DEFAULT_DETECTOR`, ``"none"`` the whole image.
    A value ending in ``.json`` or naming an existing file is a detections file (checked when it is loaded).

    Raises:
        UsageError: any other ``boxes`` value.
    """
    value = "detector" if boxes is None else str(boxes).strip()
    det = DEFAULT_DETECTOR if detector is None else str(detector).strip()
    low = value.lower()
    if low == "detector":
        return ("none", None) if det.lower() == "none" else ("detector", det)
    if low in ("none", "gt"):
        return low, None
    if low.endswith(".json") or Path(value).expanduser().is_file():
        return "file", value
    raise UsageError(f"unknown --boxes value {value!r}: expected detector, none, gt, or a COCO detection-results "
                     f"JSON file")


def make_box_source(boxes: str | Path | None = None, detector: str | None = None, *, conf: float = 0.25,
                    iou: float = 0.7, imgsz: int = 640, device: str = "cpu", half: bool = False,
                    file_thr: float | None = None, max_det: int = 100, annotations=None,
                    backend: str = "torch", fallback: bool = False) -> BoxSource:
    """The box source for ``--boxes`` / ``--detector`` (vocabulary in the module docstring).

    Args:
        boxes, detector: see :func:`parse_box_spec`.
        conf, iou, imgsz, half, max_det: detector settings (minimum score in [0, 1], NMS IoU, input pixels, FP16,
            boxes per image). device: torch device string.
        file_thr: minimum score of boxes from a detections file (default ``conf``).
        annotations: for ``gt``, a :class:`~kanpose_cli.core.data.coco.CocoKeypointData` or the path of a COCO
            keypoint annotation JSON.
        backend, fallback: what runs the detector (``torch`` / ``onnxruntime``), see
            :class:`~kanpose_cli.core.detect.yolo.YoloPersonDetector`.

    Raises:
        UsageError: unknown ``boxes`` value, or ``gt`` without annotations.
        InputError: unreadable detections or annotation file. WeightsError: detector weights missing.
    """
    kind, value = parse_box_spec(boxes, detector)
    if kind == "none":
        return WholeImageBoxes()
    if kind == "gt":
        if annotations is None:
            raise UsageError("--boxes gt needs ground-truth annotations (kanpose eval has them); use --boxes "
                             "detector, none or a detections JSON")
        if not hasattr(annotations, "gt_boxes"):
            from kanpose_cli.core.data.coco import CocoKeypointData

            annotations = CocoKeypointData(annotations)
        return GtBoxes(annotations)
    if kind == "file":
        return FileBoxes(value, conf if file_thr is None else file_thr)
    return DetectorBoxes(value, conf=conf, iou=iou, imgsz=imgsz, device=device, half=half, max_det=max_det,
                         backend=backend, fallback=fallback)
