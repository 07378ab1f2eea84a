"""The top-down pipeline: person boxes -> crops (affine warp) -> batched pose network -> decode -> keypoints in
original-image pixels. Shared by predict, eval and bench."""

from __future__ import annotations

import numpy as np
import torch

from kanpose_cli.core.data.transforms import box_to_center_size, crop_to_image, get_warp_matrix, warp_image
from kanpose_cli.core.models.registry import PoseModel
from kanpose_cli.core.results import PoseResult


def make_crops(image_bgr: np.ndarray, boxes: np.ndarray, input_size: tuple[int, int], udp: bool,
               padding: float = 1.25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp every person box into a model-input crop.

    Args:
        image_bgr: (H_img, W_img, 3) uint8. boxes: (N, 4) xyxy original-image pixels.
        input_size: model input ``(H, W)``. udp: UDP affine (spec §1.3). padding: box enlargement (1.25).

    Returns:
        ``(crops (N, H, W, 3) uint8 RGB, centers (N, 2), roi_sizes (N, 2))``, the last two in original-image pixels.
    """
    H, W = input_size
    centers, sizes = box_to_center_size(np.asarray(boxes).reshape(-1, 4), W / H, padding)
    crops = np.empty((len(centers), H, W, 3), dtype=np.uint8)
    for i, (c, s) in enumerate(zip(centers, sizes)):
        s = np.maximum(s, 1.0)
        sizes[i] = s
        crops[i] = warp_image(image_bgr, get_warp_matrix(c, s, (W, H), udp=udp), (W, H))[..., ::-1]
    return crops, centers, sizes


class TopDownPipeline:
    """Run a pose model on given person boxes.

    Args:
        model: the :class:`PoseModel` (already on ``device``).
        device: torch device. half: run the network in FP16 (CUDA only; checked by ``select_device``).
        flip: flip test (average with the mirrored crop's flipped-back outputs).
        batch_size: maximum number of crops per forward pass.
    """

    def __init__(self, model: PoseModel, device: torch.device, half: bool = False, flip: bool = False,
                 batch_size: int = 32):
        self.model, self.device, self.half, self.flip, self.batch_size = model, device, half, flip, batch_size
        self.model.to(device).eval()
        if half:
            self.model.half()

    def estimate(self, image_bgr: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray, path: str = "") -> PoseResult:
        """Poses of the given persons in one image.

        Args:
            image_bgr: (H_img, W_img, 3) uint8. boxes: (N, 4) xyxy original-image pixels. box_scores: (N,).

        Returns:
            :class:`PoseResult` with keypoints in original-image pixels.
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        kset = self.model.keypoints
        n, k = len(boxes), kset.num_keypoints
        if n == 0:
            return PoseResult(boxes, np.zeros(0), np.zeros((0, k, 2)), np.zeros((0, k)), image_bgr.shape[:2], path,
                              keypoint_set=kset)
        crops, centers, sizes = make_crops(image_bgr, boxes, self.model.input_size, self.model.spec.udp)
        kpts, scores = self.predict_crops(crops)
        H, W = self.model.input_size
        kpts_img = crop_to_image(kpts, centers, sizes, (W, H), udp=self.model.spec.udp)
        return PoseResult(boxes, box_scores, kpts_img, scores, image_bgr.shape[:2], path, keypoint_set=kset)

    @torch.no_grad()
    def predict_crops(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 RGB crops -> ``(keypoints (N, K, 2) crop pixels, scores (N, K))`` as float64/float32."""
        kpts, scores = [], []
        for start in range(0, len(crops_rgb), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(crops_rgb[start:start + self.batch_size])).to(self.device)
            x = self.model.normalize(batch)
            if self.half:
                x = x.half()
            k, s = self.model.predict(x, flip=self.flip)
            kpts.append(k.cpu().numpy().astype(np.float64))
            scores.append(s.cpu().numpy())
        return np.concatenate(kpts), np.concatenate(scores)
