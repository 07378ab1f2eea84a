"""Where the time of a run goes: seconds per pipeline stage, summed over the frames of a run.

The stages, in the order a frame meets them:

- ``decode``: reading and decoding the frame (file read + ``cv2.imdecode``, or ``VideoCapture.read``). With the
  background reader (:class:`~kanpose_cli.core.data.prefetch.Prefetcher`, the default of
  :meth:`~kanpose_cli.core.inference.estimator.PoseEstimator.run`) this runs in parallel with the other stages, so it
  does not add to the wall time unless the consumer has to ``wait`` for it.
- ``wait``: time the estimator stood idle waiting for the next frame (close to 0 when reading keeps ahead).
- ``detect``: the person box source (the YOLO person detector, or the boxes of a file) on the frames that run it.
- ``track``: the tracker (ids), the One-Euro smoothing and, with ``det_every`` > 1, the carried boxes.
- ``pose``: the crops, the batched pose network, the decode and the back-projection to image pixels. A one-stage
  ``yolo:`` model finds the people and their keypoints in one pass: all its time is ``pose``.
- ``write``: what the caller does with each result (``kanpose predict``: drawing and writing the files, ``--show``).

All values are seconds of wall time measured with ``time.perf_counter``. On CUDA the stages end in a host copy of
their outputs (boxes, keypoints), so each stage's time includes its GPU work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

STAGES = ("decode", "wait", "detect", "track", "pose", "write")


@dataclass
class StageTimes:
    """Seconds per stage (module docstring), summed over a run, and the frame counts to divide them by.

    Attributes:
        decode, wait, detect, track, pose, write: seconds (≥ 0).
        frames: frames estimated (readable frames; an unreadable one is decoded, or tried, but not estimated).
        detector_frames: frames the box source ran on (fewer than ``frames`` with ``det_every`` > 1; 0 for a
            one-stage ``yolo:`` model).
        background_decode: True when ``decode`` ran in the background reader (overlapped with the other stages).
    """

    decode: float = 0.0
    wait: float = 0.0
    detect: float = 0.0
    track: float = 0.0
    pose: float = 0.0
    write: float = 0.0
    frames: int = 0
    detector_frames: int = 0
    background_decode: bool = False

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage`` (one of :data:`STAGES`). Raises ``KeyError`` for another name."""
        if stage not in STAGES:
            raise KeyError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        setattr(self, stage, getattr(self, stage) + float(seconds))

    def ms_per_frame(self) -> dict[str, float]:
        """``{stage: milliseconds per estimated frame}`` for every stage (all 0.0 before any frame)."""
        n = self.frames
        return {s: (1e3 * getattr(self, s) / n if n else 0.0) for s in STAGES}

    def to_dict(self) -> dict:
        """Seconds and counts as a plain dict (for JSON)."""
        return asdict(self)

    def describe(self, unit: str = "frame") -> str:
        """One line for logs, milliseconds per ``unit``: ``decode 4.1 (background) · wait 0.0 · detect 61.2 ·
        track 0.3 · pose 40.5 · write 9.8 ms per frame · detector on 34 of 100 frames`` (the detector part only
        when it skipped frames). Empty before any frame."""
        if not self.frames:
            return ""
        ms = self.ms_per_frame()
        parts = [f"{s} {ms[s]:.1f}" + (" (background)" if s == "decode" and self.background_decode else "")
                 for s in STAGES]
        text = " · ".join(parts) + f" ms per {unit}"
        if 0 < self.detector_frames < self.frames:
            text += f" · detector on {self.detector_frames} of {self.frames} {unit}s"
        return text
