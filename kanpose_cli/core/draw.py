"""Drawing poses on images with OpenCV (no fonts downloaded, no matplotlib).

It sits low in ``kanpose_cli.core`` (numpy and OpenCV only, no kanpose import) so that
:meth:`kanpose_cli.core.results.PoseResult.plot` and the writers in :mod:`kanpose_cli.core.data` can both use it.
A result is read by duck typing: ``boxes`` (N, 4), ``keypoints`` (N, K, 2), ``keypoint_scores`` (N, K),
``keypoint_set`` (names, flip index, skeleton; a :class:`~kanpose_cli.core.keypoints.KeypointSet`) and, for tracked
video, ``track_ids`` (N,) or None.

Colours follow the flip side (``keypoint_set.sides()``, from the flip index): the keypoints of a flip pair get the
left or right colour, keypoints that map to themselves the centre colour, a link the colour of its ends when both are
on one side and the centre colour otherwise. A set without left/right words in its names (a hand, a face) is
coloured correctly too.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

# BGR colours: left side blue-ish, right side orange, centre green (mmpose-like); boxes yellow when untracked.
_LEFT, _RIGHT, _MID = (255, 128, 0), (0, 128, 255), (0, 255, 0)
BOX_COLOUR = (0, 255, 255)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """BGR colour of a track id: hues spaced by the golden ratio, so consecutive ids look clearly different and the
    same id always gets the same colour."""
    r, g, b = colorsys.hsv_to_rgb((int(track_id) * 0.6180339887) % 1.0, 0.85, 1.0)
    return int(round(255 * b)), int(round(255 * g)), int(round(255 * r))


_SIDE_COLOUR = {"left": _LEFT, "right": _RIGHT, "centre": _MID}


def keypoint_colours(keypoint_set) -> list[tuple[int, int, int]]:
    """BGR colour of each of the K keypoints of ``keypoint_set`` by flip side (module docstring); a set without
    ``sides()`` (no flip index) is all centre."""
    sides = keypoint_set.sides() if hasattr(keypoint_set, "sides") else ["centre"] * len(keypoint_set.names)
    return [_SIDE_COLOUR[s] for s in sides]


def draw_poses(image_bgr: np.ndarray, result, kpt_thr: float = 0.3, draw_boxes: bool = True,
               radius: int | None = None, thickness: int | None = None, label: str | None = None) -> np.ndarray:
    """Return a copy of ``image_bgr`` ((H, W, 3) uint8 BGR) with boxes, skeleton links and keypoints drawn.

    Keypoints (and links touching them) with score < ``kpt_thr`` are not drawn. A tracked person's box gets the
    colour of its track id (:func:`track_colour`) and an ``id N`` tag; untracked boxes are yellow. ``label`` is
    written in the top-left corner (e.g. "RANDOM WEIGHTS" for untrained models). Radius/thickness default to the
    image size. Coordinates are pixels of ``image_bgr`` (x before y).
    """
    canvas = image_bgr.copy()
    h, w = canvas.shape[:2]
    scale = max(h, w) / 640.0
    radius = radius or max(2, int(round(3 * scale)))
    thickness = thickness or max(1, int(round(2 * scale)))
    names = result.keypoint_set.names
    colours = keypoint_colours(result.keypoint_set)
    track_ids = getattr(result, "track_ids", None)
    for i in range(len(result)):
        kpts, scores = result.keypoints[i], result.keypoint_scores[i]
        if draw_boxes:
            x1, y1, x2, y2 = (int(round(v)) for v in result.boxes[i])
            colour = BOX_COLOUR if track_ids is None else track_colour(track_ids[i])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
            if track_ids is not None:
                size = 0.6 * max(scale, 0.6)
                text = f"id {int(track_ids[i])}"
                (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, max(1, thickness))
                top = max(0, y1 - th - base - 2)
                cv2.rectangle(canvas, (x1, top), (x1 + tw + 4, top + th + base + 2), colour, -1)
                cv2.putText(canvas, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255),
                            max(1, thickness), cv2.LINE_AA)
        for a, b in result.keypoint_set.skeleton:
            if scores[a] >= kpt_thr and scores[b] >= kpt_thr:
                pa = (int(round(kpts[a, 0])), int(round(kpts[a, 1])))
                pb = (int(round(kpts[b, 0])), int(round(kpts[b, 1])))
                colour = colours[a] if colours[a] == colours[b] else _MID
                cv2.line(canvas, pa, pb, colour, thickness, cv2.LINE_AA)
        for k in range(len(names)):
            if scores[k] >= kpt_thr:
                cv2.circle(canvas, (int(round(kpts[k, 0])), int(round(kpts[k, 1]))), radius, colours[k], -1,
                           cv2.LINE_AA)
    if label:
        cv2.putText(canvas, label, (10, int(30 * max(scale, 0.6))), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * max(scale, 0.6),
                    (0, 0, 255), max(1, thickness), cv2.LINE_AA)
    return canvas
