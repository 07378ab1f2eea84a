"""Top-down geometry: person box -> crop centre/size, the affine warp into the crop and its exact inverse.

Conventions (spec §1.2–1.3):
- Boxes are ``xyxy`` in pixels of the original image; keypoints are ``(x, y)``, x before y.
- A crop is described by its centre ``(cx, cy)`` and ROI size ``(w_roi, h_roi)`` in original-image pixels
  (mmpose's ``scale * 200``); the ROI has the aspect ratio of the model input and is the box padded by 1.25.
- The warp maps the ROI onto the model input of size ``(W, H)``. Standard affine (mmpose
  ``get_affine_transform``): ``x_crop = (x - cx) * W / w_roi + W / 2``. UDP (Huang et al., "The Devil is in the
  Details", CVPR 2020; ViTPose): ``x_crop = (x - cx) * (W - 1) / w_roi + (W - 1) / 2``. Rotation is about the
  ROI centre, counter-clockwise for positive degrees in image display (mmpose convention).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from kanpose_cli.core.protocol import BOX_PADDING


def box_to_center_size(box_xyxy: np.ndarray, aspect_ratio: float,
                       padding: float = BOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """Convert person boxes into crop centres and ROI sizes.

    Args:
        box_xyxy: (..., 4) boxes ``x1, y1, x2, y2`` in original-image pixels.
        aspect_ratio: model input width / height (0.75 for 256×192 and 384×288, 1.0 for 256×256).
        padding: ROI enlargement factor (:data:`~kanpose_cli.core.protocol.BOX_PADDING`, 1.25, in
            ViTPose/mmpose/SimCC at test and train time).

    Returns:
        ``(center, size)``, each (..., 2) float64: centre ``(cx, cy)`` and ROI ``(w_roi, h_roi)`` in
        original-image pixels, the box expanded to ``aspect_ratio`` and multiplied by ``padding``.
    """
    box = np.asarray(box_xyxy, dtype=np.float64)
    x1, y1, x2, y2 = box[..., 0], box[..., 1], box[..., 2], box[..., 3]
    w = np.maximum(x2 - x1, 0.0)
    h = np.maximum(y2 - y1, 0.0)
    center = np.stack([x1 + w * 0.5, y1 + h * 0.5], axis=-1)
    wider = w > aspect_ratio * h
    w_out = np.where(wider, w, h * aspect_ratio)
    h_out = np.where(wider, w / aspect_ratio, h)
    size = np.stack([w_out, h_out], axis=-1) * padding
    return center, size


def get_warp_matrix(
    center: np.ndarray,
    roi_size: np.ndarray,
    output_size: tuple[int, int],
    rotation_deg: float = 0.0,
    udp: bool = True,
) -> np.ndarray:
    """Affine matrix from original-image pixels to crop pixels.

    Args:
        center: (2,) ROI centre ``(cx, cy)`` in original-image pixels.
        roi_size: (2,) ROI ``(w_roi, h_roi)`` in original-image pixels.
        output_size: crop size ``(W, H)`` in pixels (x before y).
        rotation_deg: rotation of the ROI about its centre in degrees (augmentation only; 0 at test time).
        udp: unbiased data processing (maps pixel centres 0 and W-1 of the crop to the ROI borders) if True,
            else mmpose's standard ``get_affine_transform``.

    Returns:
        (2, 3) float64 matrix ``M`` with ``[x_crop, y_crop] = M @ [x, y, 1]``.
    """
    cx, cy = float(center[0]), float(center[1])
    w_roi, h_roi = float(roi_size[0]), float(roi_size[1])
    W, H = output_size
    if w_roi <= 0 or h_roi <= 0:
        raise ValueError(f"ROI size must be positive, got {w_roi}x{h_roi}")
    span_w, span_h = (W - 1.0, H - 1.0) if udp else (float(W), float(H))
    sx, sy = span_w / w_roi, span_h / h_roi
    theta = math.radians(rotation_deg)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    # Rotate about the ROI centre, scale to the crop, move the centre to the crop centre.
    return np.array(
        [
            [cos_t * sx, sin_t * sx, sx * (-cx * cos_t - cy * sin_t) + span_w / 2.0],
            [-sin_t * sy, cos_t * sy, sy * (cx * sin_t - cy * cos_t) + span_h / 2.0],
        ],
        dtype=np.float64,
    )


def invert_warp(matrix: np.ndarray) -> np.ndarray:
    """Exact inverse of a (2, 3) affine matrix (crop pixels -> original-image pixels)."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points of shape (..., 2) (x, y); returns float64 (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Crop a person with ``cv2.warpAffine`` (bilinear, zero border).

    Args:
        image: (H_img, W_img, 3) uint8 image.
        matrix: (2, 3) matrix from :func:`get_warp_matrix`.
        output_size: ``(W, H)`` of the crop.

    Returns:
        (H, W, 3) uint8 crop.
    """
    return cv2.warpAffine(image, matrix, (int(output_size[0]), int(output_size[1])), flags=cv2.INTER_LINEAR)


def crop_to_image(points_crop: np.ndarray, center: np.ndarray, roi_size: np.ndarray,
                  output_size: tuple[int, int], udp: bool = True) -> np.ndarray:
    """Map keypoints from crop pixels back to original-image pixels (rotation 0, as at test time).

    Args:
        points_crop: (N, K, 2) keypoints in crop pixels (x, y).
        center: (N, 2) ROI centres in original-image pixels.
        roi_size: (N, 2) ROI sizes in original-image pixels.
        output_size: crop ``(W, H)``.
        udp: must match the warp used to make the crops.

    Returns:
        (N, K, 2) float64 keypoints in original-image pixels; the exact inverse of :func:`get_warp_matrix`.
    """
    pts = np.asarray(points_crop, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)[:, None, :]
    roi = np.asarray(roi_size, dtype=np.float64)[:, None, :]
    span = np.array([output_size[0], output_size[1]], dtype=np.float64) - (1.0 if udp else 0.0)
    return (pts - span / 2.0) * roi / span + center


def make_crops(image_bgr: np.ndarray, boxes: np.ndarray, input_size: tuple[int, int], udp: bool,
               padding: float = BOX_PADDING) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp every person box into a model-input crop (the crops of the top-down pipeline,
    :class:`~kanpose_cli.core.inference.pipeline.TopDownPipeline`, and of the export parity check).

    Args:
        image_bgr: (H_img, W_img, 3) uint8. boxes: (N, 4) xyxy original-image pixels.
        input_size: model input ``(H, W)``. udp: UDP affine (spec §1.3). padding: box enlargement
            (:data:`~kanpose_cli.core.protocol.BOX_PADDING`).

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
