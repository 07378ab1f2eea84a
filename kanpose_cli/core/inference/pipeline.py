"""The top-down pipeline: person boxes -> crops (affine warp) -> batched pose network -> decode -> keypoints in
original-image pixels. The only crop -> network -> uncrop loop; :class:`~kanpose_cli.core.inference.estimator.
PoseEstimator` drives it for predict, eval, label, bench and the Python API."""

from __future__ import annotations

import numpy as np
import torch

from kanpose_cli.core.data.transforms import crop_to_image, make_crops
from kanpose_cli.core.models.registry import PoseModel
from kanpose_cli.core.results import PoseResult


class TopDownPipeline:
    """Run a pose model on given person boxes.

    Args:
        model: the :class:`PoseModel` (already on ``device``). Its network runs through an inference copy
            (:func:`~kanpose_cli.core.models.inference.prepare_for_inference`: BatchNorm folded into the convs, CPU
            micro-batches) made here, so later weight changes to ``model`` need a new pipeline.
        device: torch device. half: run the network in FP16 (CUDA only; checked by ``select_device``).
        flip: flip test (average with the mirrored crop's flipped-back outputs).
        batch_size: maximum number of crops per forward pass.
    """

    def __init__(self, model: PoseModel, device: torch.device, half: bool = False, flip: bool = False,
                 batch_size: int = 32):
        from kanpose_cli.core.models.inference import prepare_for_inference

        self.model, self.device, self.half, self.flip, self.batch_size = model, device, half, flip, batch_size
        self.model.to(device).eval()
        if half:
            self.model.half()
        # BN folded into the convs + CPU micro-batching; a copy, so `model` stays trainable and exportable.
        self.net = prepare_for_inference(self.model.net, tuple(self.model.input_size), device)

    def estimate(self, image_bgr: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray, path: str = "") -> PoseResult:
        """Poses of the given persons in one image (:meth:`estimate_many` with one image)."""
        return self.estimate_many([image_bgr], [boxes], [box_scores], [path])[0]

    def estimate_many(self, images_bgr: list[np.ndarray], boxes: list[np.ndarray], box_scores: list[np.ndarray],
                      paths: list[str] | None = None) -> list[PoseResult]:
        """Poses of the given persons in several images, with the crops of all images batched together.

        Args:
            images_bgr: (H_img, W_img, 3) uint8 BGR images. boxes: per image (N_i, 4) xyxy original-image pixels.
            box_scores: per image (N_i,) in [0, 1]. paths: per image, recorded in the results.

        Returns:
            One :class:`PoseResult` per image, keypoints (N_i, K, 2) in that image's pixels (x before y).
        """
        kset, H, W, udp = self.model.keypoints, *self.model.input_size, self.model.spec.udp
        paths = list(paths) if paths is not None else [""] * len(images_bgr)
        parts = []
        for image, b in zip(images_bgr, boxes):
            b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
            parts.append((b, *make_crops(image, b, (H, W), udp)) if len(b) else (b, None, None, None))
        crops = [c for _, c, _, _ in parts if c is not None]
        if crops:
            kpts_all, scores_all = self.predict_crops(np.concatenate(crops))
        out, offset, k = [], 0, kset.num_keypoints
        for image, (b, _, centers, sizes), s, path in zip(images_bgr, parts, box_scores, paths):
            n = len(b)
            if n:
                kpts = crop_to_image(kpts_all[offset:offset + n], centers, sizes, (W, H), udp=udp)
                kscores = scores_all[offset:offset + n]
            else:
                kpts, kscores = np.zeros((0, k, 2)), np.zeros((0, k))
            offset += n
            out.append(PoseResult(b, np.asarray(s, dtype=np.float32).reshape(n), kpts, kscores, image.shape[:2],
                                  path, keypoint_set=kset))
        return out

    @torch.no_grad()
    def predict_crops(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 RGB crops -> ``(keypoints (N, K, 2) crop pixels, scores (N, K))`` as float64/float32."""
        kpts, scores = [], []
        for start in range(0, len(crops_rgb), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(crops_rgb[start:start + self.batch_size])).to(self.device)
            x = self.model.normalize(batch)
            if self.half:
                x = x.half()
            k, s = self.model.predict(x, flip=self.flip, net=self.net)
            kpts.append(k.cpu().numpy().astype(np.float64))
            scores.append(s.cpu().numpy())
        return np.concatenate(kpts), np.concatenate(scores)
