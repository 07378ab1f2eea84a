"""The one estimator seam: :class:`PoseEstimator`. Every command (predict, eval, label, bench) and the Python API
(``from kanpose_cli import PoseEstimator``) get their poses from it, as :class:`~kanpose_cli.core.results.PoseResult`.

Two ways to estimate, chosen by ``model``:

- **top-down** (any registered kanpose model, a checkpoint, an official ViTPose checkpoint or an exported ``.onnx``):
  person boxes from one box source (:func:`kanpose_cli.core.detect.boxes.make_box_source`: the YOLO detector,
  ``none``, ``gt``, or a detections JSON), then the crops of all images of a batch go through the network together
  (:class:`~kanpose_cli.core.inference.pipeline.TopDownPipeline`, up to ``batch`` crops per forward pass);
- **one-stage** (``model="yolo:NAME"``, e.g. ``yolo:yolo11n-pose.pt``): an ultralytics YOLO pose model finds the
  people and their keypoints itself (:class:`~kanpose_cli.core.detect.yolo.YoloPoseEstimator`).

On video (:meth:`PoseEstimator.stream` / :meth:`PoseEstimator.run` with tracking), each frame's boxes go through a
:class:`~kanpose_cli.core.track.TrackSession` (ultralytics' ByteTrack or BoT-SORT) before the pose network, so only
tracked people are estimated and each carries a ``track_id``; the keypoints can then be smoothed per track with the
One-Euro filter. With ``det_every`` = N > 1 the person detector runs on every N-th frame only, and the frames in
between take each tracked person's box from their pose in the previous frame
(:class:`~kanpose_cli.core.track.carry.BoxCarrier`); those frames are estimated one after the other (each one's boxes
need the previous one's poses), the others in chunks of :data:`IMAGES_PER_CHUNK`.

:meth:`PoseEstimator.run` reads the source in a background thread
(:class:`~kanpose_cli.core.data.prefetch.Prefetcher`), :data:`IMAGES_PER_CHUNK` frames ahead, so decoding the next
chunk overlaps detecting and estimating this one. Every call adds its time per stage (decode, wait, detect, track,
pose) to :attr:`PoseEstimator.timings` (:class:`~kanpose_cli.core.inference.timing.StageTimes`).

Conventions: images are (H, W, 3) uint8 **BGR** (OpenCV's order) unless said otherwise; boxes are ``x1, y1, x2, y2``
and keypoints ``x, y``, both in pixels of the original image; scores in [0, 1].
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import numpy as np

from kanpose_cli.core.data.prefetch import Prefetcher
from kanpose_cli.core.data.sources import Frame, open_source, read_image
from kanpose_cli.core.inference.timing import StageTimes
from kanpose_cli.core.errors import InputError, UsageError, WeightsError
from kanpose_cli.core.protocol import IMAGES_PER_CHUNK
from kanpose_cli.core.results import PoseResult
from kanpose_cli.core.track import TrackOptions, TrackSession

YOLO_PREFIX = "yolo:"


def is_yolo_model(model) -> bool:
    """True for ``"yolo:NAME"`` (an ultralytics pose model run end to end)."""
    return isinstance(model, str) and model.lower().startswith(YOLO_PREFIX)


def to_bgr(image, channels: str = "bgr") -> tuple[np.ndarray, str]:
    """One API input -> ``((H, W, 3) uint8 BGR contiguous array, path or "")``.

    Accepts a path (``str`` / :class:`~pathlib.Path`, decoded with OpenCV), a NumPy array (H, W, 3) uint8 in
    ``channels`` order (``"bgr"``, OpenCV's, or ``"rgb"``), (H, W) grey or (H, W, 4) with alpha (dropped), or a PIL
    image (any mode; converted from RGB).

    Raises:
        InputError: unreadable file, or an array of another shape or dtype.
        UsageError: ``channels`` not bgr/rgb.
    """
    if channels.lower() not in ("bgr", "rgb"):
        raise UsageError(f"channels must be 'bgr' or 'rgb', not {channels!r}")
    if isinstance(image, (str, Path)):
        return read_image(image), str(image)
    if hasattr(image, "convert") and hasattr(image, "size") and not isinstance(image, np.ndarray):  # PIL.Image
        rgb = np.asarray(image.convert("RGB"))
        return np.ascontiguousarray(rgb[..., ::-1]), str(getattr(image, "filename", "") or "")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(f"expected a uint8 image array, got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 1:
        raise InputError(f"expected an image array of shape (H, W, 3), got {array.shape}")
    array = array[..., :3]
    if channels.lower() == "rgb":
        array = array[..., ::-1]
    return np.ascontiguousarray(array), ""


class PoseEstimator:
    """Human pose estimator: top-down (person boxes -> kanpose pose model) or a YOLO pose model end to end.

    Args:
        model: a registered model name (``kanpose models``; default ``amfacpose-r18-128x96``, or the checkpoint's
            model), a ready :class:`~kanpose_cli.core.models.registry.PoseModel`, or ``"yolo:NAME"`` for an
            ultralytics pose model run end to end.
        weights: None (the model's shipped weights), a kanpose ``.safetensors`` checkpoint, an official ViTPose /
            Hugging Face checkpoint, an exported ``.onnx`` file, or ``"random"`` (untrained; tests only).
        detector: YOLO weights name or path for the person boxes (default ``yolo11n-pose.pt``), or ``"none"``
            (the whole image is one person).
        boxes: box source instead of the detector: ``"detector"`` (default), ``"none"``, ``"gt"`` (needs
            ``annotations``) or the path of a COCO detection-results JSON.
        device: ``"auto"`` (default, as every command: CUDA device 0 when available, else the CPU), ``"cpu"``,
            ``"cuda"`` or ``"cuda:N"`` (an explicit device never falls back silently). half: FP16 (CUDA only).
        flip: flip test (the pose network also runs on the mirrored crops). batch: crops per forward pass.
        conf: minimum person box score in [0, 1] (detector, and detections files unless ``box_thr`` is given).
        iou: detector NMS IoU. det_imgsz: detector input size in pixels. box_thr: minimum score of boxes from a
            detections file. max_det: boxes per image (default 100 for the detector, 300 for ``yolo:`` models).
        annotations: COCO keypoint annotation JSON path (or loaded ``CocoKeypointData``) for ``boxes="gt"``.
        backend: ``"auto"`` (default), ``"torch"`` or ``"onnxruntime"``: what runs the pose network
            and the person detector (:mod:`kanpose_cli.core.inference.backend`; ``auto`` is onnxruntime on CPU in fp32
            with trained weights, torch otherwise; the detector is onnxruntime on CPU for ``auto`` and
            ``onnxruntime``; a ready ``PoseModel`` object stays on its own network unless a backend is named).

    Attributes:
        name: the pose model (``"amfacpose-r18-256x192"``, ``"yolo:yolo11n-pose.pt"``). weights_label: its weights.
        keypoints: the :class:`~kanpose_cli.core.keypoints.KeypointSet` of the results (the model's; COCO-17 for
            the shipped weights).
        box_source: the :class:`~kanpose_cli.core.detect.boxes.BoxSource` (None for ``yolo:`` models).
        boxes_label: where the boxes come from, for logs and output headers. random_weights: untrained weights.
        backend: what runs the pose network: ``torch``, ``onnxruntime <execution provider>`` or ``ultralytics``,
            and with the detector as box source what runs it (`` (detector onnxruntime)``).
        aspect_ratio: crop width / height (0.75 for a ``yolo:`` model, as the COCO protocol assumes).
        skipped: ``(path, reason)`` of the frames the last :meth:`stream` could not read.
        timings: :class:`~kanpose_cli.core.inference.timing.StageTimes`, seconds per stage: reset by each :meth:`run`
            / :meth:`stream` (or given to :meth:`run`); calls on images (``est(img)``, :meth:`predict`) add to it,
            assign ``est.timings = StageTimes()`` to start afresh.

    Raises:
        UsageError: contradicting options (``weights`` / ``boxes`` / ``detector`` with a ``yolo:`` model), unknown
            model, box source or backend; ``backend="onnxruntime"`` with ``half``. WeightsError: weights missing or
            mismatched. DeviceError: device unavailable. KanposeError: ``backend="onnxruntime"`` and the export
            failed.
        InputError: unreadable detections or annotation file.

    Example::

        from kanpose_cli import PoseEstimator
        est = PoseEstimator()                        # amfacpose-r18-128x96 + YOLO11n person boxes, CPU
        result = est("bus.jpg")                      # PoseResult: keypoints (N, 17, 2) image pixels, x before y
        for r in est.stream("clip.mp4", track=True, smooth=True):
            print(r.frame_index, r.track_ids, r.keypoints.shape)
    """

    def __init__(self, model=None, weights: str | None = None, detector: str | None = None,
                 boxes: str | None = None, *, device="auto", half: bool = False, flip: bool = False,
                 batch: int = 32, conf: float = 0.25, iou: float = 0.7, det_imgsz: int = 640,
                 box_thr: float | None = None, max_det: int | None = None, annotations=None,
                 backend: str = "auto"):
        from kanpose_cli.core.device import select_device

        self.device = select_device(str(device), half)
        self.half, self.batch = half, int(batch)
        self.conf, self.iou, self.det_imgsz, self.box_thr = conf, iou, det_imgsz, box_thr
        if self.batch < 1:
            raise UsageError(f"batch must be ≥ 1, got {batch}")
        self.pose_model = self.yolo = self.box_source = self.pipeline = None
        self.skipped: list[tuple[str, str]] = []
        self.timings = StageTimes()
        if is_yolo_model(model):
            for value, option in ((weights, "--weights"), (boxes, "--boxes"), (detector, "--detector")):
                if value is not None:
                    raise UsageError(f"{option} does not apply to yolo: models (they find their own people and "
                                     f"keypoints); use --model yolo:PATH")
            if backend != "auto":
                raise UsageError("--backend does not apply to yolo: models (ultralytics runs them)")
            from kanpose_cli.core.detect.yolo import YoloPoseEstimator

            try:
                self.yolo = YoloPoseEstimator(model[len(YOLO_PREFIX):], conf=conf, iou=iou, imgsz=det_imgsz,
                                              device=str(self.device), half=half, max_det=max_det or 300)
            except WeightsError as exc:
                raise WeightsError(str(exc).replace("--detector PATH", "--model yolo:PATH")) from None
            self.name = f"{YOLO_PREFIX}{self.yolo.weights.name}"
            self.backend = "ultralytics"
            self.weights_label = str(self.yolo.weights)
            self.keypoints = self.yolo.keypoints
            self.flip, self.input_size, self.aspect_ratio = False, None, 0.75
            self.boxes_label = f"own (YOLO pose boxes, conf ≥ {conf:g})"
        else:
            from kanpose_cli.core.detect.boxes import make_box_source
            from kanpose_cli.core.inference.backend import apply_backend, backend_name, detector_backend
            from kanpose_cli.core.inference.pipeline import TopDownPipeline

            from kanpose_cli.core.weights import load_pose_model

            if model is not None and not isinstance(model, str):  # a ready PoseModel
                if weights is not None:
                    raise UsageError("weights cannot be given with a ready PoseModel object")
                self.pose_model = model
                if backend != "auto":  # a ready object stays as given unless a backend is named
                    self.pose_model = apply_backend(model, backend, self.device, half)
            else:
                self.pose_model = apply_backend(load_pose_model(model, weights, self.device), backend, self.device,
                                                half)
            self.box_source = make_box_source(boxes, detector, conf=conf, iou=iou, imgsz=det_imgsz,
                                              device=str(self.device), half=half, file_thr=box_thr,
                                              max_det=max_det or 100, annotations=annotations,
                                              backend=detector_backend(backend, self.device, half),
                                              fallback=backend == "auto")
            self.pipeline = TopDownPipeline(self.pose_model, self.device, half=half, flip=flip,
                                            batch_size=self.batch)
            self.name = self.pose_model.name
            self.weights_label = getattr(self.pose_model, "weights_label", "?")
            self.backend = backend_name(self.pose_model)
            if self.box_source.kind == "detector":
                self.backend += f" (detector {self.box_source.detector.backend})"
            self.keypoints = self.pose_model.keypoints
            self.flip = bool(flip)
            self.input_size = tuple(self.pose_model.input_size)
            self.aspect_ratio = self.input_size[1] / self.input_size[0]
            self.boxes_label = self.box_source.name
        from kanpose_cli.core.weights import RANDOM_LABEL

        self.random_weights = self.weights_label == RANDOM_LABEL

    def __repr__(self) -> str:
        return (f"PoseEstimator(model={self.name!r}, weights={self.weights_label!r}, boxes={self.boxes_label!r}, "
                f"device={str(self.device)!r}, flip={self.flip})")

    # ------------------------------------------------------------------------------------------------ images
    def __call__(self, image, *, boxes=None, channels: str = "bgr"):
        """Poses in one image, or in a list of images (batched together).

        Args:
            image: a path, a (H, W, 3) uint8 array (``channels`` order, BGR by default), a PIL image, or a list of
                these (then a list of results comes back).
            boxes: optional person boxes to use instead of the box source: (N, 4) ``x1, y1, x2, y2`` original-image
                pixels (score 1), or ``(boxes, scores)``; for a list of images, one entry per image.
            channels: ``"bgr"`` or ``"rgb"``, the channel order of array inputs.

        Returns:
            :class:`PoseResult` (a list of them for a list of images), keypoints (N, K, 2) in image pixels.

        Raises:
            InputError: an unreadable image. UsageError: ``boxes`` with a ``yolo:`` model.
        """
        many = isinstance(image, (list, tuple))
        items = list(image) if many else [image]
        arrays, paths = zip(*(to_bgr(x, channels) for x in items)) if items else ((), ())
        given = None
        if boxes is not None:
            given = [_as_boxes(b) for b in (boxes if many else [boxes])]
            if len(given) != len(items):
                raise UsageError(f"got boxes for {len(given)} images and {len(items)} images")
        results = self.predict(list(arrays), list(paths), boxes=given)
        return results if many else results[0]

    def predict(self, images: list[np.ndarray], paths: list[str] | None = None,
                image_ids: list[int | None] | None = None,
                boxes: list[tuple[np.ndarray, np.ndarray]] | None = None) -> list[PoseResult]:
        """Poses in several BGR images at once (the crops of all of them batched through the network).

        Args:
            images: (H, W, 3) uint8 BGR arrays. paths: recorded in the results (and used to find COCO ids for a
                detections file). image_ids: COCO image ids when known (``gt`` and detections-file boxes).
            boxes: per image ``(boxes (N, 4) xyxy pixels, scores (N,))`` to use instead of the box source.

        Returns:
            One :class:`PoseResult` per image.
        """
        return self._estimate(images, paths, image_ids, boxes)

    def _estimate(self, images, paths=None, image_ids=None, boxes=None, frames: list[Frame] | None = None,
                  session: TrackSession | None = None) -> list[PoseResult]:
        n = len(images)
        paths = list(paths) if paths is not None else [""] * n
        image_ids = list(image_ids) if image_ids is not None else [None] * n
        if n == 0:
            return []
        times, clock = self.timings, time.perf_counter
        if self.yolo is not None:
            if boxes is not None:
                raise UsageError("boxes cannot be given to a yolo: model (it finds its own people)")
            start = clock()
            results = self.yolo.predict_batch(list(images), paths)
            times.add("pose", clock() - start)  # one stage: boxes and keypoints in one pass
            start = clock()
            for i, r in enumerate(results):
                _stamp(r, frames[i] if frames else None)
                if session is not None:
                    ids = session.assign(r.boxes, r.box_scores, images[i])
                    results[i] = session.finish(r.select(ids >= 0), ids[ids >= 0])
            times.add("track", clock() - start)
        else:
            if boxes is None:
                start = clock()
                boxes = self.box_source(list(images), paths, image_ids)
                times.add("detect", clock() - start)
                times.detector_frames += n
            boxes = [(np.asarray(b, np.float32).reshape(-1, 4), np.asarray(s, np.float32).reshape(-1))
                     for b, s in boxes]
            track_ids = []
            start = clock()
            if session is not None:  # frame order: the tracker sees one frame after the other
                for i, (b, s) in enumerate(boxes):
                    ids = session.assign(b, s, images[i])
                    boxes[i] = (b[ids >= 0], s[ids >= 0])
                    track_ids.append(ids[ids >= 0])
            times.add("track", clock() - start)
            start = clock()
            results = self.pipeline.estimate_many(list(images), [b for b, _ in boxes], [s for _, s in boxes], paths)
            times.add("pose", clock() - start)
            start = clock()
            for i, r in enumerate(results):
                _stamp(r, frames[i] if frames else None)
                if session is not None:
                    session.finish(r, track_ids[i])
            times.add("track", clock() - start)
        for r, image in zip(results, images):
            r.orig_img = image
        times.frames += n
        return results

    def _estimate_carried(self, frames: list[Frame], session: TrackSession) -> list[PoseResult]:
        """``det_every`` > 1 (top-down only): the detector on the chunk's due frames (one batch), then frame by frame
        tracker -> pose -> the boxes carried to the next frame. ``frames`` are readable frames in video order."""
        carrier, times, clock = session.carrier, self.timings, time.perf_counter
        due = [carrier.due(f.index) for f in frames]
        picked = [f for f, d in zip(frames, due) if d]
        found = iter(())
        if picked:
            start = clock()
            found = iter(self.box_source([f.image for f in picked], [f.path for f in picked], [None] * len(picked)))
            times.add("detect", clock() - start)
            times.detector_frames += len(picked)
        results = []
        for frame, detect in zip(frames, due):
            start = clock()
            b, s = next(found) if detect else carrier.boxes()
            b, s = np.asarray(b, np.float32).reshape(-1, 4), np.asarray(s, np.float32).reshape(-1)
            ids = session.assign(b, s, frame.image)
            keep = ids >= 0
            times.add("track", clock() - start)
            start = clock()
            r = self.pipeline.estimate_many([frame.image], [b[keep]], [s[keep]], [frame.path])[0]
            times.add("pose", clock() - start)
            start = clock()
            carrier.update(b, s, ids, r.keypoints, r.keypoint_scores, frame.image.shape[:2], detect)  # before smoothing
            _stamp(r, frame)
            session.finish(r, ids[keep])
            r.orig_img = frame.image
            results.append(r)
            times.add("track", clock() - start)
        times.frames += len(frames)
        return results

    # ------------------------------------------------------------------------------------------------ sources
    def run(self, source, tracking: TrackOptions | None = None, *, prefetch: bool = True,
            timings: StageTimes | None = None) -> Iterator[tuple[Frame, PoseResult | None]]:
        """Every frame of ``source`` with its result, in the source's order; ``None`` for a frame that could not be
        read (its ``error`` says why). The loop under ``kanpose predict`` and ``kanpose label``.

        Frames are estimated in chunks of :data:`IMAGES_PER_CHUNK` (a webcam frame by frame); with ``prefetch`` a
        background thread reads and decodes up to one chunk ahead while the current chunk is detected and
        estimated. Closing the generator early (``break``, an exception, ``KeyboardInterrupt``) stops that thread.

        Args:
            source: a SOURCE string or path (image, folder, glob, video, webcam index; see
                :func:`~kanpose_cli.core.data.sources.open_source`), an int (webcam), a
                :class:`~kanpose_cli.core.data.sources.Source`, or any iterable of
                :class:`~kanpose_cli.core.data.sources.Frame`.
            tracking: :class:`~kanpose_cli.core.track.TrackOptions` to track people (video or webcam only); its
                ``det_every`` > 1 runs the person detector on every N-th frame only.
            prefetch: read ahead in a background thread (default). False reads each frame when it is needed; the
                results are the same.
            timings: a :class:`~kanpose_cli.core.inference.timing.StageTimes` to add this run's seconds per stage to
                (kept as :attr:`timings`); default a fresh one.

        Raises:
            UsageError: see :meth:`check_stream`. InputError: a source that cannot be opened or yields no frame
                (raised after the frames read before it).
        """
        src = open_source(str(source)) if isinstance(source, (str, Path, int)) else source
        self.check_stream(src, tracking)
        session = TrackSession(tracking, getattr(src, "fps", 30.0)) if tracking is not None else None
        times = self.timings = timings if timings is not None else StageTimes()
        chunk = 1 if getattr(src, "kind", "") == "webcam" else IMAGES_PER_CHUNK
        reader = None
        if prefetch:
            reader = Prefetcher(src, depth=chunk, on_read=lambda seconds: times.add("decode", seconds))
            times.background_decode = True
        frames = iter(reader if reader is not None else src)
        buffer: list[Frame] = []
        try:
            while True:
                start = time.perf_counter()
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                finally:  # with the reader: time spent waiting for it; without: the read itself
                    times.add("wait" if reader is not None else "decode", time.perf_counter() - start)
                buffer.append(frame)
                if len(buffer) >= chunk:
                    yield from self._run_frames(buffer, session)
                    buffer = []
            yield from self._run_frames(buffer, session)
        finally:
            if reader is not None:
                reader.close()
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    def check_stream(self, source, tracking: TrackOptions | None) -> None:
        """Check that ``tracking`` fits ``source`` and this estimator (what :meth:`run` checks before it starts).

        Raises:
            UsageError: tracking or ``det_every`` > 1 on a source that is not a video or webcam (no ``is_stream``);
                ``det_every`` > 1 with a ``yolo:`` model (no separate detector to skip) or with boxes that do not
                come from the person detector (``none``, ``gt``, a detections file).
        """
        if tracking is None:
            return
        every = int(getattr(tracking, "det_every", 1) or 1)
        if not getattr(source, "is_stream", False):
            what = getattr(source, "description", "this source")
            flags = "--track and --det-every need" if every > 1 else "--track needs"
            raise UsageError(f"{flags} a video file or a webcam; {what} is not one (tracking follows people from "
                             f"one video frame to the next)")
        if every > 1 and self.yolo is not None:
            raise UsageError("--det-every does not apply to yolo: models (they find the people and their keypoints "
                             "in one pass: there is no separate person detector to skip)")
        if every > 1 and getattr(self.box_source, "kind", "") != "detector":
            raise UsageError(f"--det-every skips the person detector on some frames, but the boxes come from "
                             f"{self.boxes_label}; use --boxes detector")

    def _run_frames(self, frames: list[Frame], session) -> Iterator[tuple[Frame, PoseResult | None]]:
        good = [f for f in frames if f.image is not None]
        if session is not None and session.carrier is not None:
            results = iter(self._estimate_carried(good, session))
        else:
            results = iter(self._estimate([f.image for f in good], [f.path for f in good], frames=good,
                                          session=session))
        for f in frames:
            yield f, (None if f.image is None else next(results))

    def stream(self, source, *, track: bool = False, tracker: str = "bytetrack", smooth: bool = False,
               min_cutoff: float | None = None, beta: float | None = None, d_cutoff: float | None = None,
               det_every: int = 1, prefetch: bool = True) -> Iterator[PoseResult]:
        """Results frame by frame (a generator: a video is never held in memory).

        Args:
            source: a video file, a folder, a glob, an image, a webcam index (int or ``"0"``), or a
                :class:`~kanpose_cli.core.data.sources.Source` (see :meth:`run`).
            track: give each person a ``track_id`` that persists across frames (video or webcam only); only tracked
                persons are returned. tracker: ``"bytetrack"`` or ``"botsort"`` (ultralytics' implementations).
            smooth: One-Euro smoothing of each track's keypoints (needs ``track``). min_cutoff: Hz (default 1.0).
                beta: 1/pixel (default 0.01). d_cutoff: Hz (default 1.0). See
                :mod:`kanpose_cli.core.track.one_euro`.
            det_every: N ≥ 1 (needs ``track``): the person detector runs on frames 0, N, 2N, … only; in between,
                each tracked person's box follows their pose in the previous frame. 1 (default): every frame.
            prefetch: read and decode ahead in a background thread (default; same results either way).

        Yields:
            :class:`PoseResult` per readable frame (``frame_index`` and ``time_s`` set for video). Unreadable
            frames are skipped and listed in :attr:`skipped`. Seconds per stage are in :attr:`timings`.

        Raises:
            UsageError: ``track`` or ``det_every`` > 1 on a still image or folder, ``smooth`` or ``det_every`` > 1
                without ``track``, ``det_every`` > 1 with a ``yolo:`` model or non-detector boxes, bad filter
                parameters.
        """
        tracking = make_track_options(track, tracker, smooth, min_cutoff, beta, d_cutoff, det_every)
        self.skipped = []
        for frame, result in self.run(source, tracking, prefetch=prefetch):
            if result is None:
                self.skipped.append((frame.path, frame.error or "unreadable"))
                continue
            yield result


def make_track_options(track: bool, tracker: str = "bytetrack", smooth: bool = False,
                       min_cutoff: float | None = None, beta: float | None = None,
                       d_cutoff: float | None = None, det_every: int | None = None) -> TrackOptions | None:
    """The tracking settings of ``--track --tracker --smooth --min-cutoff --beta --d-cutoff --det-every`` (None when
    not tracking). Parameters left None take the defaults of :class:`~kanpose_cli.core.track.TrackOptions`.

    Raises:
        UsageError: smoothing or ``det_every`` > 1 asked for without tracking, unknown tracker, out-of-range filter
            parameters, ``det_every`` not an integer ≥ 1.
    """
    if not track:
        if smooth:
            raise UsageError("--smooth smooths each person's track: it needs --track")
        if det_every is not None and det_every != 1:
            TrackOptions(det_every=det_every).check()  # a bad value is reported as such
            raise UsageError("--det-every moves each tracked person's box from frame to frame between detector "
                             "frames: it needs --track")
        return None
    defaults = TrackOptions()
    return TrackOptions(tracker=tracker, smooth=bool(smooth),
                        min_cutoff=defaults.min_cutoff if min_cutoff is None else float(min_cutoff),
                        beta=defaults.beta if beta is None else float(beta),
                        d_cutoff=defaults.d_cutoff if d_cutoff is None else float(d_cutoff),
                        det_every=1 if det_every is None else det_every).check()


def _as_boxes(value) -> tuple[np.ndarray, np.ndarray]:
    """API boxes: an (N, 4) array (score 1) or ``(boxes, scores)``."""
    if isinstance(value, tuple) and len(value) == 2:
        b, s = value
    else:
        b, s = value, None
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    s = np.ones(len(b), np.float32) if s is None else np.asarray(s, dtype=np.float32).reshape(-1)
    if len(s) != len(b):
        raise InputError(f"{len(b)} boxes but {len(s)} scores")
    return b, s


def _stamp(result: PoseResult, frame: Frame | None) -> None:
    if frame is not None:
        result.frame_index, result.time_s = frame.index, frame.time_s
