"""The results object every engine returns: one :class:`PoseResult` per image or video frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kanpose_cli.core.keypoints import COCO17, KeypointSet


@dataclass
class PoseResult:
    """Poses of the N people found in one image.

    Attributes:
        boxes: (N, 4) float32 person boxes ``x1, y1, x2, y2`` in original-image pixels.
        box_scores: (N,) float32 detector confidences in [0, 1] (1.0 for given/whole-image boxes).
        keypoints: (N, K, 2) float32 keypoints ``x, y`` in original-image pixels.
        keypoint_scores: (N, K) float32 keypoint confidences in [0, 1].
        image_size: ``(height, width)`` of the original image in pixels.
        path: source image/video path (or ``webcam:0``); ``frame_index`` and ``time_s`` for video frames.
        keypoint_set: the keypoint definition (names, skeleton).
    """

    boxes: np.ndarray
    box_scores: np.ndarray
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    image_size: tuple[int, int]
    path: str = ""
    frame_index: int | None = None
    time_s: float | None = None
    keypoint_set: KeypointSet = field(default=COCO17)

    def __post_init__(self):
        k = self.keypoint_set.num_keypoints
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = self.boxes.shape[0]
        self.box_scores = np.asarray(self.box_scores, dtype=np.float32).reshape(n)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(n, k, 2)
        self.keypoint_scores = np.asarray(self.keypoint_scores, dtype=np.float32).reshape(n, k)

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def instances(self, kpt_thr: float = 0.0) -> list[dict]:
        """Per-person dicts (the ``instances`` of the output JSON schema).

        Keypoints with a score below ``kpt_thr`` are written as ``null`` (undetected), never as 0.
        """
        out = []
        for i in range(len(self)):
            kpts = [[round(float(x), 2), round(float(y), 2)] if s >= kpt_thr else None
                    for (x, y), s in zip(self.keypoints[i], self.keypoint_scores[i])]
            out.append({
                "bbox": [round(float(v), 2) for v in self.boxes[i]],
                "bbox_score": round(float(self.box_scores[i]), 4),
                "keypoints": kpts,
                "keypoint_scores": [round(float(s), 4) for s in self.keypoint_scores[i]],
            })
        return out

    def to_coco(self, image_id: int) -> list[dict]:
        """COCO keypoint-results entries (``keypoints`` flat ``x, y, score`` × K; ``score`` = box score × mean
        keypoint score above 0.2, the mmpose ``bbox_keypoint`` rescoring)."""
        out = []
        for i in range(len(self)):
            flat = np.concatenate([self.keypoints[i], self.keypoint_scores[i, :, None]], axis=1).reshape(-1)
            s = self.keypoint_scores[i]
            kpt_score = float(s[s > 0.2].mean()) if (s > 0.2).any() else 0.0
            out.append({"image_id": int(image_id), "category_id": 1,
                        "keypoints": [round(float(v), 3) for v in flat],
                        "score": round(float(self.box_scores[i]) * kpt_score, 6)})
        return out
