"""The predict loop: a loop over :meth:`PoseEstimator.run` (source frames -> boxes -> [tracks] -> poses) into the
writers, with a per-frame callback for progress display. Streams (no frame is kept after it is written; the
estimator's background reader holds at most one chunk of decoded frames ahead); an interruption keeps finished
outputs. The seconds per stage (decode, wait, detect, track, pose, write) come back in
:attr:`PredictSummary.stages`."""

from __future__ import annotations

import os
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable

import cv2

from kanpose_cli.core.data.sources import Frame, Source, demo_source, open_source
from kanpose_cli.core.data.writers import PredictionWriter
from kanpose_cli.core.detect.base import image_id_from_path
from kanpose_cli.core.inference.estimator import PoseEstimator
from kanpose_cli.core.inference.timing import StageTimes
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.io import RunDir
from kanpose_cli.core.results import PoseResult
from kanpose_cli.core.text import plural
from kanpose_cli.core.track import TrackOptions


@dataclass
class PredictSummary:
    """What a predict run did.

    Attributes:
        frames: frames (images) estimated and written. persons: persons written, over all frames.
        skipped: ``(path, reason)`` of the inputs that could not be read. seconds: wall time of the loop.
        interrupted: stopped by ``KeyboardInterrupt``. tracks: distinct track ids seen (0 when not tracking).
        stages: seconds per stage (:class:`~kanpose_cli.core.inference.timing.StageTimes`: decode, wait, detect,
            track, pose, write) of this process.
    """

    frames: int = 0
    persons: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    tracks: int = 0
    stages: StageTimes = field(default_factory=StageTimes)

    @property
    def ms_per_frame(self) -> float:
        """Wall-clock milliseconds per written frame (0.0 when none was written)."""
        return 1000.0 * self.seconds / self.frames if self.frames else 0.0

    def failure(self, source: Source) -> str | None:
        """The one-line error for exit code 1 when inputs were skipped (None when nothing was skipped)."""
        if not self.skipped:
            return None
        if self.frames == 0 or getattr(source, "kind", "") == "image":
            return self.skipped[0][1] if len(self.skipped) == 1 else \
                f"none of the {len(self.skipped)} inputs could be read"
        what = "frame" if source.is_stream else "image"
        n = len(self.skipped)
        return (f"{n} of {plural(self.frames + n, what)} could not be read and {'was' if n == 1 else 'were'} "
                f"skipped")


def display_available() -> bool:
    """True if a window can be shown (a display on Linux; assumed elsewhere)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def predict_source(source: str | None, demo: bool = False, tracking: TrackOptions | bool | None = None,
                   det_every: int = 1) -> Source:
    """SOURCE or ``--demo`` -> the :class:`Source` (checked before any model is loaded).

    Args:
        tracking: the tracking options, or just whether ``--track`` was given (None / False: not tracking).
        det_every: the ``--det-every`` value (> 1 needs a video or webcam, whether or not tracking is on).

    Raises:
        UsageError: both or neither given; tracking or ``det_every`` > 1 on a still image, folder or glob.
            InputError: a source that cannot be opened.
    """
    if (source is None) == (not demo):
        raise UsageError("give either SOURCE or --demo" if demo else "missing SOURCE (an image, folder, glob, video, "
                         "webcam index or URL); try kanpose predict --demo")
    src = demo_source() if demo else open_source(source)
    if det_every > 1 and not src.is_stream:
        raise UsageError(f"--det-every needs a video file or a webcam; {src.description} is not one (the frames "
                         f"between detector frames follow the people of the frame before)")
    if tracking is not None and tracking is not False and not src.is_stream:
        raise UsageError(f"--track needs a video file or a webcam; {src.description} is not one (tracking follows "
                         f"people from one video frame to the next)")
    return src


def make_writer(run_dir: RunDir, estimator: PoseEstimator, kpt_thr: float = 0.3, save: bool = True,
                save_json: bool = True, save_coco: bool = False, save_tracks: bool = False,
                tracking: TrackOptions | None = None, source: Source | None = None,
                coco_file: bool = True) -> PredictionWriter:
    """The writer of a predict run, with the shared header of every JSON (model, weights, box source, flip test,
    the keypoint set's name, keypoint names and skeleton (0-based), and the tracker settings when tracking).

    ``source``: a torchrun shard (:func:`~kanpose_cli.core.tasks.distributed.shard_source`) fixes the output
    stems over all ranks' inputs. ``coco_file``: False on torchrun ranks (rank 0 merges the COCO results).

    Raises:
        UsageError: ``save_tracks`` without tracking.
    """
    from kanpose_cli.core.weights import RANDOM_LABEL

    if save_tracks and tracking is None:
        raise UsageError("--save-tracks writes the person tracks of --track; add --track")
    kset = estimator.keypoints
    header = {"model": estimator.name, "weights": estimator.weights_label, "detector": estimator.boxes_label,
              "flip_test": estimator.flip, "keypoint_set": kset.name, "keypoint_names": list(kset.names),
              "skeleton": [list(p) for p in kset.skeleton]}
    if tracking is not None:
        header["tracker"] = str(tracking.tracker).lower()
        header["smoothing"] = ({"filter": "one-euro", "min_cutoff_hz": tracking.min_cutoff, "beta_per_px":
                                tracking.beta, "d_cutoff_hz": tracking.d_cutoff} if tracking.smooth else None)
        if tracking.det_every > 1:  # absent with 1: the header of a plain tracked run stays as it was
            header["det_every"] = int(tracking.det_every)
    return PredictionWriter(run_dir, header, kpt_thr=kpt_thr, save_images=save, save_json=save_json,
                            save_coco=save_coco, label=RANDOM_LABEL if estimator.random_weights else None,
                            save_tracks=save_tracks, stems=getattr(source, "stems", None), coco_file=coco_file)


def run_predict(source: Source, estimator: PoseEstimator, writer: PredictionWriter,
                on_frame: Callable[[Frame, PoseResult | None], None] | None = None,
                show: bool = False, tracking: TrackOptions | None = None, prefetch: bool = True) -> PredictSummary:
    """Process every frame of ``source`` with ``estimator`` and write the results.

    Unreadable images (and undecodable frames in the middle of a video) are recorded in ``summary.skipped`` and
    passed to ``on_frame`` with result None; the loop goes on (and tracks continue). ``KeyboardInterrupt`` stops
    the loop (and the estimator's background reader), closes the writers (partial outputs are kept) and sets
    ``summary.interrupted``. ``prefetch``: read ahead in a background thread (see :meth:`PoseEstimator.run`).
    ``summary.stages`` holds the seconds per stage, ``write`` being the writing, drawing and ``show`` of each frame
    (the ``on_frame`` callback not included).

    Raises:
        InputError: a video/webcam that yields no frame. UsageError: ``tracking`` on a still image or folder, or
            ``det_every`` that does not fit (:meth:`PoseEstimator.check_stream`).
    """
    summary = PredictSummary()
    stages = summary.stages
    track_ids: set[int] = set()
    global_index = getattr(source, "global_index", {})  # a torchrun shard: positions in the whole input list
    start = time.perf_counter()
    try:
        with closing(estimator.run(source, tracking, prefetch=prefetch, timings=stages)) as results:
            for n, (frame, result) in enumerate(results):
                if result is None:
                    summary.skipped.append((frame.path, frame.error or "unreadable"))
                    if on_frame:
                        on_frame(frame, None)
                    continue
                written = time.perf_counter()
                _write(writer, source, frame, result, n, global_index)
                summary.frames += 1
                summary.persons += len(result)
                if result.track_ids is not None:
                    track_ids.update(int(t) for t in result.track_ids)
                if show:
                    cv2.imshow("kanpose", writer.draw(frame.image, result, kpt_thr=writer.kpt_thr,
                                                      label=writer.label))
                    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                        break
                stages.add("write", time.perf_counter() - written)
                if on_frame:
                    on_frame(frame, result)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - start
        summary.tracks = len(track_ids)
        if show:
            cv2.destroyAllWindows()
    if summary.frames == 0 and not summary.skipped and not summary.interrupted:
        raise InputError("the source yielded no frames")
    return summary


def _write(writer: PredictionWriter, source: Source, frame: Frame, result: PoseResult, n: int,
           global_index: dict) -> None:
    """Write one frame's result: a video line (and frame) for a stream, else the image's files."""
    image_id = image_id_from_path(frame.path) if frame.index is None else frame.index
    if image_id is None:
        image_id = global_index.get(frame.path, n)
    if source.is_stream:
        writer.write_frame(frame.image, result, getattr(source, "fps", 30.0), image_id)
    else:
        writer.write_image(frame.image, result, image_id)
