"""``--det-every N``: the person detector runs on every N-th video frame only; on the frames in between, each tracked
person's box is carried over from the previous frame's pose (as rtmlib's ``PoseTracker`` does with ``det_frequency``).

The carried box of a person is the bounding box of their keypoints that scored at least ``kpt_thr`` in the previous
frame, enlarged ``expansion`` times about its centre (rtmlib's ``pose_to_bbox``, 1.25) and clipped to the image. With
fewer than ``min_keypoints`` such keypoints the person's previous box is carried unchanged. The box score of a
carried box is the score it had when the detector found it. Boxes that the tracker did not take into a track in the
previous frame (a new person on their first frame) are carried unchanged too, so that the tracker sees them again
and confirms them on their second frame, as with a detector on every frame.

Units: boxes ``x1, y1, x2, y2`` and keypoints ``x, y`` in pixels of the original frame; scores in [0, 1].
"""

from __future__ import annotations

import numpy as np

DEFAULT_KPT_THR = 0.3
DEFAULT_EXPANSION = 1.25
DEFAULT_MIN_KEYPOINTS = 3


def pose_to_box(keypoints: np.ndarray, scores: np.ndarray, kpt_thr: float = DEFAULT_KPT_THR,
                expansion: float = DEFAULT_EXPANSION, min_keypoints: int = DEFAULT_MIN_KEYPOINTS,
                image_size: tuple[int, int] | None = None) -> np.ndarray | None:
    """The person box that one pose implies.

    Args:
        keypoints: (K, 2) x, y in image pixels. scores: (K,) in [0, 1].
        kpt_thr: only keypoints scoring at least this count. expansion: the keypoints' extent is scaled by this
            about its centre (1.25: rtmlib's default). min_keypoints: fewer counted keypoints give None.
        image_size: ``(H, W)`` in pixels: the box is clipped to the image when given.

    Returns:
        (4,) float32 ``x1, y1, x2, y2`` in image pixels, or None (too few confident keypoints, or a box that is
        empty after clipping).
    """
    kpts = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    keep = (np.asarray(scores, dtype=np.float64).reshape(-1) >= kpt_thr) & np.isfinite(kpts).all(axis=1)
    if int(keep.sum()) < max(1, int(min_keypoints)):
        return None
    lo, hi = kpts[keep].min(axis=0), kpts[keep].max(axis=0)
    centre = (lo + hi) / 2
    lo, hi = centre - (centre - lo) * expansion, centre + (hi - centre) * expansion
    if image_size is not None:
        h, w = image_size
        lo, hi = np.clip(lo, 0, [w, h]), np.clip(hi, 0, [w, h])
    if not (hi > lo).all():
        return None
    return np.concatenate([lo, hi]).astype(np.float32)


class BoxCarrier:
    """Which frames run the detector, and the boxes carried to the frames that do not.

    Args:
        every: N ≥ 1: the detector runs on a frame when no detection ran yet, or when at least N frames (by frame
            index) have passed since the last one: frames 0, N, 2N, … of a clean video. When a frame that would
            run it cannot be decoded, the next readable frame runs it, and the count restarts there.
        kpt_thr, expansion, min_keypoints: as in :func:`pose_to_box`.

    Raises:
        ValueError: ``every`` < 1.
    """

    def __init__(self, every: int, kpt_thr: float = DEFAULT_KPT_THR, expansion: float = DEFAULT_EXPANSION,
                 min_keypoints: int = DEFAULT_MIN_KEYPOINTS):
        if int(every) < 1:
            raise ValueError(f"det_every must be ≥ 1, got {every}")
        self.every = int(every)
        self.kpt_thr, self.expansion, self.min_keypoints = float(kpt_thr), float(expansion), int(min_keypoints)
        self.last_detection: int | None = None
        self._count = 0
        self._boxes = np.zeros((0, 4), np.float32)
        self._scores = np.zeros(0, np.float32)

    def due(self, index: int | None) -> bool:
        """Whether the detector runs on the frame with this index (frames are asked in order, each once).

        Args:
            index: the frame's index in the video (None: counted here, 0, 1, 2, … over the calls).

        Returns:
            True for a detector frame (recorded as the last detection), False for a frame that uses :meth:`boxes`.
        """
        index = self._count if index is None else int(index)
        self._count = index + 1
        if self.last_detection is None or index - self.last_detection >= self.every:
            self.last_detection = index
            return True
        return False

    def boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """The carried boxes for the next frame: ``(boxes (M, 4) float32 xyxy pixels, scores (M,) float32)``."""
        return self._boxes.copy(), self._scores.copy()

    def update(self, boxes: np.ndarray, scores: np.ndarray, track_ids: np.ndarray, keypoints: np.ndarray,
               keypoint_scores: np.ndarray, image_size: tuple[int, int]) -> None:
        """Remember one finished frame.

        Args:
            boxes: (M, 4) the boxes fed to the tracker in this frame. scores: (M,) their scores.
            track_ids: (M,) the tracker's answer, ≥ 1 for tracked boxes, -1 for the others.
            keypoints: (T, K, 2) the poses of the T tracked boxes, in the order they appear in ``boxes``
                (before any smoothing: the current pose, not a lagging one). keypoint_scores: (T, K).
            image_size: ``(H, W)`` of the frame in pixels.
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        tracked = np.flatnonzero(np.asarray(track_ids).reshape(-1) >= 0)
        out = boxes.copy()
        for j, i in enumerate(tracked):
            box = pose_to_box(keypoints[j], keypoint_scores[j], self.kpt_thr, self.expansion, self.min_keypoints,
                              image_size)
            if box is not None:
                out[i] = box
        self._boxes, self._scores = out, scores.copy()
