"""The predict loop: source frames -> detector -> top-down pipeline -> writers, with a per-frame callback for
progress display. Streams (no frame is kept after it is written); an interruption keeps finished outputs."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import cv2

from kanpose_cli.core.data.sources import Frame, Source
from kanpose_cli.core.data.writers import PredictionWriter
from kanpose_cli.core.detect.base import PersonDetector, image_id_from_path
from kanpose_cli.core.engine.pipeline import TopDownPipeline
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.results import PoseResult


@dataclass
class PredictSummary:
    """What a predict run did. ``skipped`` lists ``(path, reason)``; times in seconds."""

    frames: int = 0
    persons: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames if self.frames else 0.0


def display_available() -> bool:
    """True if a window can be shown (a display on Linux; assumed elsewhere)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_predict(source: Source, detector: PersonDetector, pipeline: TopDownPipeline, writer: PredictionWriter,
                on_frame: Callable[[Frame, PoseResult | None], None] | None = None,
                show: bool = False) -> PredictSummary:
    """Process every frame of ``source``.

    Unreadable images are recorded in ``summary.skipped`` and passed to ``on_frame`` with result None; the loop
    goes on. ``KeyboardInterrupt`` stops the loop, closes the writers (partial outputs are kept) and sets
    ``summary.interrupted``.

    Raises:
        InputError: a video/webcam that yields no frame.
    """
    summary = PredictSummary()
    start = time.perf_counter()
    try:
        for n, frame in enumerate(source):
            if frame.image is None:
                summary.skipped.append((frame.path, frame.error or "unreadable"))
                if on_frame:
                    on_frame(frame, None)
                continue
            boxes, scores = detector(frame.image, frame.path)
            result = pipeline.estimate(frame.image, boxes, scores, frame.path)
            result.frame_index, result.time_s = frame.index, frame.time_s
            image_id = image_id_from_path(frame.path) if frame.index is None else frame.index
            if image_id is None:
                image_id = n
            if source.is_stream:
                writer.write_frame(frame.image, result, getattr(source, "fps", 30.0), image_id)
            else:
                writer.write_image(frame.image, result, image_id)
            summary.frames += 1
            summary.persons += len(result)
            if show:
                cv2.imshow("kanpose", writer.draw(frame.image, result, kpt_thr=writer.kpt_thr, label=writer.label))
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
            if on_frame:
                on_frame(frame, result)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - start
        if show:
            cv2.destroyAllWindows()
    if summary.frames == 0 and not summary.skipped and not summary.interrupted:
        raise InputError("the source yielded no frames")
    return summary
