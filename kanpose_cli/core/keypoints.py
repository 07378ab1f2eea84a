"""Keypoint-set metadata as data: names, flip index, skeleton, OKS sigmas (COCO-17).

:class:`KeypointSet`, :data:`COCO17` and :func:`get_keypoint_set`. It sits at the bottom of ``kanpose_cli.core``
and imports nothing from kanpose (numpy only), so results, models, codecs, data and engine can all use it.

Reference: COCO 2017 keypoint annotations and ViTPose ``configs/_base_/datasets/coco.py`` (spec §1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeypointSet:
    """A keypoint definition.

    Attributes:
        name: identifier stored in checkpoints and output JSON (e.g. ``"coco17"``).
        names: K keypoint names in model-output order.
        flip_index: permutation of length K; ``flip_index[k]`` is the keypoint that ``k`` becomes in a
            horizontally mirrored image. It is an involution.
        skeleton: links as 0-based index pairs, for drawing.
        sigmas: K per-keypoint OKS sigmas (COCO), used by OKS-NMS and COCOeval.
        upper_body: indices used by half-body augmentation as the upper body.
    """

    name: str
    names: tuple[str, ...]
    flip_index: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    upper_body: tuple[int, ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def lower_body(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.num_keypoints) if i not in self.upper_body)

    def sigmas_array(self) -> np.ndarray:
        """OKS sigmas as a float64 array of shape (K,)."""
        return np.asarray(self.sigmas, dtype=np.float64)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "names": list(self.names),
            "flip_index": list(self.flip_index),
            "skeleton": [list(p) for p in self.skeleton],
            "sigmas": list(self.sigmas),
        }


COCO17 = KeypointSet(
    name="coco17",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
    upper_body=tuple(range(11)),
)

KEYPOINT_SETS = {COCO17.name: COCO17}


def get_keypoint_set(name: str) -> KeypointSet:
    """Look up a keypoint set by name; raises ``KeyError`` listing the known names."""
    try:
        return KEYPOINT_SETS[name]
    except KeyError:
        raise KeyError(f"unknown keypoint set {name!r}; known: {', '.join(KEYPOINT_SETS)}") from None
