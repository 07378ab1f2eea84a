"""One annotated person of a training set, whatever file format it came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Instance:
    """One person for top-down training.

    Attributes:
        image_path: the image file. image_id, ann_id: ids within its source (COCO ids, or LSP column + 1).
        width, height: image size in pixels.
        box: (4,) float64 ``x1, y1, x2, y2`` person box in image pixels (sanitised, inside the image).
        keypoints: (K, 3) float64 ``x, y, v`` in image pixels on the model's keypoint set; ``v`` is COCO's
            visibility (0 unlabelled -> target weight 0, 1 labelled but occluded, 2 visible).
    """

    image_path: str
    image_id: int
    ann_id: int
    width: int
    height: int
    box: np.ndarray
    keypoints: np.ndarray
