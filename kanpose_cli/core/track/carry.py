"""``--det-every N``: the person detector runs on every N-th video frame only; on the frames in between, each tracked
person's box is carried over from the previous frame's pose.

rtmlib's ``PoseTracker`` (``det_frequency``) carries the bounding box of the confident keypoints, enlarged 1.25
times. That box is only as whole as the pose: joints the pose model scores low (ankles of a person in motion, with a
small or weakly trained model) drop out of it, the next crop is cut shorter, and the person shrinks to their upper
body over a few frames. kanpose therefore keeps the size the detector gave and moves only the position: the carried
box of a tracked person is their box on the last detector frame (the *anchor*), shifted by the median displacement of
the keypoints that scored at least ``kpt_thr`` both on the anchor frame and in the previous frame. A change of scale
is picked up at the next detector frame, at most N − 1 frames later. With fewer than ``min_keypoints`` such
keypoints the person's previous box is carried unchanged. A box score is the score the detector gave. Boxes that the
tracker did not take into a track in the previous frame (a new person on their first frame) are carried unchanged
too, so that the tracker sees them again and confirms them on their second frame, as with a detector on every frame.

Units: boxes ``x1, y1, x2, y2`` and keypoints ``x, y`` in pixels of the original frame; scores in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_KPT_THR = 0.3
DEFAULT_MIN_KEYPOINTS = 3


def shift_box(box: np.ndarray, anchor_keypoints: np.ndarray, anchor_scores: np.ndarray, keypoints: np.ndarray,
              scores: np.ndarray, kpt_thr: float = DEFAULT_KPT_THR, min_keypoints: int = DEFAULT_MIN_KEYPOINTS,
              image_size: tuple[int, int] | None = None) -> np.ndarray | None:
    """``box`` moved as the person moved between two poses of them.

    Args:
        box: (4,) ``x1, y1, x2, y2`` in image pixels, the box that goes with the anchor pose.
        anchor_keypoints, keypoints: (K, 2) x, y in image pixels: the person's pose then and now.
        anchor_scores, scores: (K,) in [0, 1].
        kpt_thr: only keypoints scoring at least this in both poses count. min_keypoints: fewer counted keypoints
            give None.
        image_size: ``(H, W)`` in pixels: the moved box is clipped to the image when given.

    Returns:
        (4,) float32 ``x1, y1, x2, y2``: ``box`` shifted by the median displacement of the counted keypoints (the
        size is kept, up to clipping), or None (too few counted keypoints, or a box empty after clipping).
    """
    then = np.asarray(anchor_keypoints, np.float64).reshape(-1, 2)
    now = np.asarray(keypoints, np.float64).reshape(-1, 2)
    keep = ((np.asarray(anchor_scores, np.float64).reshape(-1) >= kpt_thr)
            & (np.asarray(scores, np.float64).reshape(-1) >= kpt_thr)
            & np.isfinite(then).all(axis=1) & np.isfinite(now).all(axis=1))
    if int(keep.sum()) < max(1, int(min_keypoints)):
        return None
    dx, dy = np.median(now[keep] - then[keep], axis=0)
    x1, y1, x2, y2 = np.asarray(box, np.float64).reshape(4) + [dx, dy, dx, dy]
    if image_size is not None:
        h, w = image_size
        x1, x2 = np.clip([x1, x2], 0, w)
        y1, y2 = np.clip([y1, y2], 0, h)
    if not (x2 > x1 and y2 > y1):
        return None
    return np.array([x1, y1, x2, y2], np.float32)


@dataclass
class _Anchor:
    """A tracked person on their last detector frame: the box fed to the pose model, and their pose in it."""

    box: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


class BoxCarrier:
    """Which frames run the detector, and the boxes carried to the frames that do not.

    Args:
        every: N ≥ 1: the detector runs on a frame when no detection ran yet, or when at least N frames (by frame
            index) have passed since the last one: frames 0, N, 2N, … of a clean video. When a frame that would
            run it cannot be decoded, the next readable frame runs it, and the count restarts there.
        kpt_thr, min_keypoints: as in :func:`shift_box`.

    Raises:
        ValueError: ``every`` < 1.
    """

    def __init__(self, every: int, kpt_thr: float = DEFAULT_KPT_THR, min_keypoints: int = DEFAULT_MIN_KEYPOINTS):
        if int(every) < 1:
            raise ValueError(f"det_every must be ≥ 1, got {every}")
        self.every = int(every)
        self.kpt_thr, self.min_keypoints = float(kpt_thr), int(min_keypoints)
        self.last_detection: int | None = None
        self._count = 0
        self._boxes = np.zeros((0, 4), np.float32)
        self._scores = np.zeros(0, np.float32)
        self._anchors: dict[int, _Anchor] = {}

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
               keypoint_scores: np.ndarray, image_size: tuple[int, int], detected: bool) -> None:
        """Remember one finished frame.

        Args:
            boxes: (M, 4) the boxes fed to the tracker in this frame. scores: (M,) their scores.
            track_ids: (M,) the tracker's answer, ≥ 1 for tracked boxes, -1 for the others.
            keypoints: (T, K, 2) the poses of the T tracked boxes, in the order they appear in ``boxes``
                (before any smoothing: the current pose, not a lagging one). keypoint_scores: (T, K).
            image_size: ``(H, W)`` of the frame in pixels.
            detected: whether ``boxes`` came from the detector (a detector frame: every tracked person is
                anchored here) or were carried (only a track seen for the first time is anchored here).
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        ids = np.asarray(track_ids).reshape(-1)
        tracked = np.flatnonzero(ids >= 0)
        out = boxes.copy()
        anchors = {}
        for j, i in enumerate(tracked):
            tid = int(ids[i])
            anchor = None if detected else self._anchors.get(tid)
            if anchor is None:  # anchored here: next frame starts from this box
                anchors[tid] = _Anchor(boxes[i].copy(), np.asarray(keypoints[j], np.float32).copy(),
                                       np.asarray(keypoint_scores[j], np.float32).copy())
                anchor = anchors[tid]
            else:
                anchors[tid] = anchor
            moved = shift_box(anchor.box, anchor.keypoints, anchor.scores, keypoints[j], keypoint_scores[j],
                              self.kpt_thr, self.min_keypoints, image_size)
            if moved is not None:
                out[i] = moved
        self._boxes, self._scores, self._anchors = out, scores.copy(), anchors
