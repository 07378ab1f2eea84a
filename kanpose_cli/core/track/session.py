"""Tracking one video: person boxes -> track ids (ultralytics' ByteTrack / BoT-SORT, see
:class:`kanpose_cli.core.detect.yolo.UltralyticsTracker`) -> optional One-Euro smoothing of each track's keypoints.

Track ids are renumbered 1, 2, 3 … in the order people first appear, so they do not depend on the tracker's
internal counter (which also spends ids on tentative tracks that never get confirmed). A person keeps their id
while the tracker keeps the track (also through up to ``track_buffer`` = 30 frames of absence, ultralytics'
setting). Only confirmed tracks are reported: like ``yolo track``, a box that is not part of a track in this frame
(score below the tracker's 0.25 / 0.1 thresholds, or a new person on their first frame after the video's first) is
left out of the frame's results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kanpose_cli.core.detect.yolo import TRACKERS
from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.results import PoseResult
from kanpose_cli.core.track.carry import BoxCarrier
from kanpose_cli.core.track.one_euro import DEFAULT_BETA, DEFAULT_D_CUTOFF, DEFAULT_MIN_CUTOFF, KeypointSmoother, \
    check_parameters


@dataclass
class TrackOptions:
    """Tracking settings of a video run.

    Attributes:
        tracker: ``bytetrack`` (default) or ``botsort``.
        smooth: One-Euro smoothing of each track's keypoints (off by default).
        min_cutoff: minimum cutoff frequency, Hz (> 0). beta: speed coefficient, 1/pixel (≥ 0).
        d_cutoff: cutoff of the speed estimate, Hz (> 0). (See :mod:`kanpose_cli.core.track.one_euro`.)
        det_every: N ≥ 1: the person detector runs on every N-th frame only, and the frames in between reuse each
            tracked person's box, moved with their pose in the previous frame (:mod:`kanpose_cli.core.track.carry`).
            1 (the default) runs the detector on every frame.
    """

    tracker: str = "bytetrack"
    smooth: bool = False
    min_cutoff: float = DEFAULT_MIN_CUTOFF
    beta: float = DEFAULT_BETA
    d_cutoff: float = DEFAULT_D_CUTOFF
    det_every: int = 1

    def check(self) -> "TrackOptions":
        """Return self; raises UsageError for an unknown tracker, out-of-range filter parameters or ``det_every``
        below 1."""
        if str(self.tracker).lower() not in TRACKERS:
            raise UsageError(f"unknown tracker {self.tracker!r}; choose {' or '.join(TRACKERS)}")
        try:
            whole = not isinstance(self.det_every, bool) and int(self.det_every) == self.det_every >= 1
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise UsageError(f"--det-every must be an integer ≥ 1, got {self.det_every!r}")
        try:
            check_parameters(self.min_cutoff, self.beta, self.d_cutoff)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return self

    def describe(self) -> str:
        """One line for logs: ``bytetrack, One-Euro smoothing (min cutoff 1 Hz, beta 0.01 /px, d-cutoff 1 Hz),
        detector every 3 frames`` (the parts after the tracker only when set)."""
        text = str(self.tracker).lower()
        if self.smooth:
            text += (f", One-Euro smoothing (min cutoff {self.min_cutoff:g} Hz, beta {self.beta:g} /px, "
                     f"d-cutoff {self.d_cutoff:g} Hz)")
        if self.det_every > 1:
            text += f", detector every {self.det_every} frames"
        return text


class TrackSession:
    """The tracking state of one video.

    Args:
        options: :class:`TrackOptions`. fps: the video's frame rate (frames per second).

    Attributes:
        carrier: the :class:`~kanpose_cli.core.track.carry.BoxCarrier` of ``det_every`` > 1 (None with 1).

    Raises:
        UsageError: bad options.
    """

    def __init__(self, options: TrackOptions, fps: float = 30.0):
        from kanpose_cli.core.detect.yolo import UltralyticsTracker

        self.options = options.check()
        self.tracker = UltralyticsTracker(str(options.tracker).lower(), fps)
        self.smoother = (KeypointSmoother(options.min_cutoff, options.beta, options.d_cutoff)
                         if options.smooth else None)
        self._renumber: dict[int, int] = {}
        self.carrier = BoxCarrier(options.det_every) if options.det_every > 1 else None

    def assign(self, boxes: np.ndarray, scores: np.ndarray, image_bgr: np.ndarray) -> np.ndarray:
        """Track ids of one frame's person boxes.

        Args:
            boxes: (N, 4) x1, y1, x2, y2 original-image pixels. scores: (N,) in [0, 1]. image_bgr: the frame.

        Returns:
            (N,) int64 track ids ≥ 1, or -1 for boxes outside any confirmed track.
        """
        raw = self.tracker.update(boxes, scores, image_bgr)
        out = np.full(len(raw), -1, dtype=np.int64)
        for i, tid in enumerate(raw):
            if tid >= 0:
                out[i] = self._renumber.setdefault(int(tid), len(self._renumber) + 1)
        return out

    def finish(self, result: PoseResult, track_ids: np.ndarray) -> PoseResult:
        """Attach ``track_ids`` ((N,), all ≥ 1, one per person of ``result``) and smooth the keypoints when asked
        (at the result's ``time_s``, seconds)."""
        result.track_ids = np.asarray(track_ids, dtype=np.int64).reshape(len(result))
        if self.smoother is not None and len(result):
            result.keypoints = self.smoother(result.keypoints, result.track_ids, float(result.time_s or 0.0))
        elif self.smoother is not None:
            self.smoother(result.keypoints, result.track_ids, float(result.time_s or 0.0))  # lets old tracks expire
        return result
