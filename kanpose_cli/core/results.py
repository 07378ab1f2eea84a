"""The results object every pose estimator returns: one :class:`PoseResult` per image or video frame.

The same object reaches the CLI writers and the Python API (:class:`kanpose_cli.PoseEstimator`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from kanpose_cli.core.keypoints import COCO17, KeypointSet
from kanpose_cli.core.protocol import RESCORE_KPT_THR


@dataclass
class PoseResult:
    """Poses of the N people found in one image.

    Attributes:
        boxes: (N, 4) float32 person boxes ``x1, y1, x2, y2`` in original-image pixels.
        box_scores: (N,) float32 detector confidences in [0, 1] (1.0 for given/whole-image boxes).
        keypoints: (N, K, 2) float32 keypoints ``x, y`` in original-image pixels.
        keypoint_scores: (N, K) float32 keypoint confidences in [0, 1].
        image_size: ``(height, width)`` of the original image in pixels.
        path: source image/video path (or ``webcam:0``); ``frame_index`` and ``time_s`` (seconds from the start)
            for video frames, else None.
        keypoint_set: the keypoint definition (names, skeleton).
        track_ids: (N,) int64 track ids (≥ 1) that persist across the frames of one video when tracking is on
            (``kanpose predict --track``, ``PoseEstimator.stream(..., track=True)``); None otherwise.
        orig_img: the (H, W, 3) uint8 BGR image the result was computed on, when the producer kept it (the Python
            API does; the CLI drops frames once written). Used by :meth:`plot`.
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
    track_ids: np.ndarray | None = None
    orig_img: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        k = self.keypoint_set.num_keypoints
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = self.boxes.shape[0]
        self.box_scores = np.asarray(self.box_scores, dtype=np.float32).reshape(n)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(n, k, 2)
        self.keypoint_scores = np.asarray(self.keypoint_scores, dtype=np.float32).reshape(n, k)
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(n)

    def select(self, index) -> "PoseResult":
        """A result holding only the persons ``index`` picks (a boolean mask or integer indices, NumPy style)."""
        index = np.arange(len(self))[index]
        return PoseResult(self.boxes[index], self.box_scores[index], self.keypoints[index],
                          self.keypoint_scores[index], self.image_size, self.path, self.frame_index, self.time_s,
                          self.keypoint_set, None if self.track_ids is None else self.track_ids[index],
                          self.orig_img)

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def instances(self, kpt_thr: float = 0.0) -> list[dict]:
        """Per-person dicts (the ``instances`` of the output JSON schema).

        Keypoints with a score below ``kpt_thr`` are written as ``null`` (undetected), never as 0. Tracked
        results add ``track_id`` (int) to each person, first.
        """
        out = []
        for i in range(len(self)):
            kpts = [[round(float(x), 2), round(float(y), 2)] if s >= kpt_thr else None
                    for (x, y), s in zip(self.keypoints[i], self.keypoint_scores[i])]
            inst = {} if self.track_ids is None else {"track_id": int(self.track_ids[i])}
            inst.update({
                "bbox": [round(float(v), 2) for v in self.boxes[i]],
                "bbox_score": round(float(self.box_scores[i]), 4),
                "keypoints": kpts,
                "keypoint_scores": [round(float(s), 4) for s in self.keypoint_scores[i]],
            })
            out.append(inst)
        return out

    def to_dict(self, kpt_thr: float = 0.0) -> dict:
        """The per-image record of the output schema (README, "Output schema"): ``image``, ``width``, ``height``,
        ``frame_id`` and ``time_s`` for video frames, and ``instances`` (see :meth:`instances`; keypoints scoring
        below ``kpt_thr`` are ``null``). Pixels of the original image, x before y."""
        h, w = self.image_size
        data: dict = {"image": self.path, "width": int(w), "height": int(h)}
        if self.frame_index is not None:
            data["frame_id"] = int(self.frame_index)
            data["time_s"] = round(float(self.time_s or 0.0), 4)
        data["instances"] = self.instances(kpt_thr)
        return data

    def to_json(self, kpt_thr: float = 0.0, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string (``kanpose predict`` writes the same instances with ``--kpt-thr``)."""
        return json.dumps(self.to_dict(kpt_thr), indent=indent)

    def plot(self, image: np.ndarray | None = None, kpt_thr: float = 0.3, boxes: bool = True,
             label: str | None = None) -> np.ndarray:
        """The image with boxes, skeletons and keypoints drawn (as ``kanpose predict`` saves it).

        Args:
            image: (H, W, 3) uint8 BGR image to draw on; default :attr:`orig_img`.
            kpt_thr: keypoints scoring below this are not drawn. boxes: draw the person boxes (coloured by track id
                when tracked). label: text for the top-left corner.

        Returns:
            A new (H, W, 3) uint8 BGR array (``image[..., ::-1]`` for RGB, e.g. matplotlib).

        Raises:
            ValueError: no ``image`` given and none kept in the result.
        """
        from kanpose_cli.core.draw import draw_poses

        image = self.orig_img if image is None else image
        if image is None:
            raise ValueError("PoseResult.plot: this result keeps no image; pass plot(image)")
        return draw_poses(np.ascontiguousarray(image), self, kpt_thr=kpt_thr, draw_boxes=boxes, label=label)

    def to_coco(self, image_id: int) -> list[dict]:
        """COCO keypoint-results entries (``keypoints`` flat ``x, y, score`` × K; ``score`` = box score × mean
        keypoint score above :data:`~kanpose_cli.core.protocol.RESCORE_KPT_THR` (0.2), the mmpose ``bbox_keypoint``
        rescoring)."""
        out = []
        for i in range(len(self)):
            flat = np.concatenate([self.keypoints[i], self.keypoint_scores[i, :, None]], axis=1).reshape(-1)
            s = self.keypoint_scores[i]
            kpt_score = float(s[s > RESCORE_KPT_THR].mean()) if (s > RESCORE_KPT_THR).any() else 0.0
            out.append({"image_id": int(image_id), "category_id": 1,
                        "keypoints": [round(float(v), 3) for v in flat],
                        "score": round(float(self.box_scores[i]) * kpt_score, 6)})
        return out
