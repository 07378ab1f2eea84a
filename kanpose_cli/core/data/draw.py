"""Drawing poses on images with OpenCV (no fonts downloaded, no matplotlib)."""

from __future__ import annotations

import cv2
import numpy as np

from kanpose_cli.core.results import PoseResult

# BGR colours: left side blue-ish, right side orange, centre green (mmpose-like).
_LEFT, _RIGHT, _MID = (255, 128, 0), (0, 128, 255), (0, 255, 0)


def _side(name: str):
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID


def draw_poses(image_bgr: np.ndarray, result: PoseResult, kpt_thr: float = 0.3, draw_boxes: bool = True,
               radius: int | None = None, thickness: int | None = None, label: str | None = None) -> np.ndarray:
    """Return a copy of ``image_bgr`` with boxes, skeleton links and keypoints drawn.

    Keypoints (and links touching them) with score < ``kpt_thr`` are not drawn. ``label`` is written in the top-left
    corner (e.g. "RANDOM WEIGHTS" for untrained models). Radius/thickness default to the image size.
    """
    canvas = image_bgr.copy()
    h, w = canvas.shape[:2]
    scale = max(h, w) / 640.0
    radius = radius or max(2, int(round(3 * scale)))
    thickness = thickness or max(1, int(round(2 * scale)))
    names = result.keypoint_set.names
    for i in range(len(result)):
        kpts, scores = result.keypoints[i], result.keypoint_scores[i]
        if draw_boxes:
            x1, y1, x2, y2 = (int(round(v)) for v in result.boxes[i])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 255), thickness)
        for a, b in result.keypoint_set.skeleton:
            if scores[a] >= kpt_thr and scores[b] >= kpt_thr:
                pa = (int(round(kpts[a, 0])), int(round(kpts[a, 1])))
                pb = (int(round(kpts[b, 0])), int(round(kpts[b, 1])))
                colour = _side(names[a]) if _side(names[a]) == _side(names[b]) else _MID
                cv2.line(canvas, pa, pb, colour, thickness, cv2.LINE_AA)
        for k in range(len(names)):
            if scores[k] >= kpt_thr:
                cv2.circle(canvas, (int(round(kpts[k, 0])), int(round(kpts[k, 1]))), radius, _side(names[k]), -1,
                           cv2.LINE_AA)
    if label:
        cv2.putText(canvas, label, (10, int(30 * max(scale, 0.6))), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * max(scale, 0.6),
                    (0, 0, 255), max(1, thickness), cv2.LINE_AA)
    return canvas
