"""Top-down training augmentation (spec §1.4): random flip, half-body, random shift/scale/rotation, and (off by
default) RTMPose's occlusion of the crop by black rectangles.

Reference: mmpose 1.x ``datasets/transforms/common_transforms.py`` (``RandomFlip``, ``RandomHalfBody``,
``RandomBBoxTransform``) with the ViTPose/mmpose 0.x flip conventions (``top_down_transform.py``). All geometry is
on the ROI description used by :mod:`kanpose_cli.core.data.transforms`: centre ``(cx, cy)`` and ROI size
``(w_roi, h_roi)`` in original-image pixels (the padded box); the crop itself is made later with
``get_warp_matrix(center, roi, (W, H), rotation, udp)``.

Every random draw comes from the ``numpy.random.Generator`` passed in, so a sample's augmentation is a pure
function of the generator's seed (the dataset seeds it from ``(seed, epoch, index)``: identical with any number of
DataLoader workers or after a resume).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kanpose_cli.core.errors import UsageError


@dataclass
class AugmentConfig:
    """Augmentation settings (defaults: mmpose 1.x / spec §1.4; the recipes override per family).

    Attributes:
        flip_prob: probability of a horizontal flip (0.5).
        half_body_prob: probability of half-body cropping (0.3).
        half_body_min_kpts: minimum number of labelled keypoints for half-body (9, i.e. "more than 8").
        half_body_upper_prob: probability of choosing the upper body first (0.7 in mmpose 1.x; ≈0.69 is the
            ViTPose ``randn < 0.5`` quirk).
        half_body_min_upper: labelled upper-body joints needed to use the upper body (2).
        half_body_min_lower: labelled lower-body joints needed to use the lower body (3).
        half_body_padding: ROI enlargement for the half-body box (1.5).
        shift_prob, shift_factor: centre jitter probability and range (fraction of the ROI size; 0.3, 0.16).
        scale_range: ROI scale factor range ``(lo, hi)``; drawn as ``mid + half·t``, t ~ truncated N(0,1) on [-1, 1].
        rotate_prob, rotate_factor: rotation probability and maximum in degrees (0.6, 80; AMFACPose 30).
        occlusion_prob: probability of blacking out rectangles of the crop (0: off, the mmpose 1.x default;
            RTMPose trains with 1.0 in its first stage and 0.5 in its second).
        occlusion_holes: rectangles per occluded crop (1, as RTMPose).
        occlusion_size: ``(lo, hi)`` side of a rectangle as a fraction of the crop's height (for its height) and
            width (for its width), each drawn uniformly (RTMPose's ``CoarseDropout``: 0.2–0.4).
    """

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_kpts: int = 9
    half_body_upper_prob: float = 0.7
    half_body_min_upper: int = 2
    half_body_min_lower: int = 3
    half_body_padding: float = 1.5
    shift_prob: float = 0.3
    shift_factor: float = 0.16
    scale_range: tuple[float, float] = (0.5, 1.5)
    rotate_prob: float = 0.6
    rotate_factor: float = 80.0
    occlusion_prob: float = 0.0
    occlusion_holes: int = 1
    occlusion_size: tuple[float, float] = (0.2, 0.4)

    def __post_init__(self):
        lo, hi = (float(v) for v in self.occlusion_size)
        if not 0 < lo <= hi <= 1:
            raise UsageError("aug.occlusion_size must be two fractions lo <= hi in (0, 1], got "
                             f"{list(self.occlusion_size)}")
        if not 0 <= self.occlusion_prob <= 1 or self.occlusion_holes < 0:
            raise UsageError("aug.occlusion_prob must be in [0, 1] and aug.occlusion_holes >= 0, got "
                             f"{self.occlusion_prob!r} and {self.occlusion_holes!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scale_range"] = list(self.scale_range)
        d["occlusion_size"] = list(self.occlusion_size)
        return d


def truncnorm(rng: np.random.Generator, size=None) -> np.ndarray | float:
    """Standard normal draws truncated to [-1, 1] (rejection sampling; mmpose ``_truncnorm``)."""
    n = 1 if size is None else int(np.prod(size))
    out = np.empty(0)
    while out.size < n:
        d = rng.standard_normal(max(8, 2 * n))
        out = np.concatenate([out, d[np.abs(d) <= 1.0]])
    out = out[:n]
    return float(out[0]) if size is None else out.reshape(size)


def flip_instance(image_width: int, keypoints: np.ndarray, visible: np.ndarray, center: np.ndarray,
                  flip_index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror one instance for a horizontally flipped image (ViTPose ``fliplr_joints``; spec §1.4 step 1).

    Args:
        image_width: width of the original image in pixels.
        keypoints: (K, 2) image pixels. visible: (K,) weights. center: (2,) ROI centre in image pixels.
        flip_index: length-K permutation swapping left and right.

    Returns:
        ``(keypoints, visible, center)`` for the mirrored image: ``x -> W_img - 1 - x``, left/right swapped.
    """
    idx = np.asarray(flip_index, dtype=np.int64)
    kpts = keypoints[idx].copy()
    kpts[:, 0] = image_width - 1 - kpts[:, 0]
    vis = visible[idx].copy()
    c = np.array([image_width - 1 - center[0], center[1]], dtype=np.float64)
    return kpts, vis, c


def half_body(rng: np.random.Generator, keypoints: np.ndarray, visible: np.ndarray, upper_ids, aspect_ratio: float,
              cfg: AugmentConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """Half-body ROI (mmpose 1.x ``RandomHalfBody._get_half_body_bbox``).

    Args:
        keypoints: (K, 2) image pixels. visible: (K,) weights (> 0 = labelled).
        upper_ids: indices of upper-body keypoints. aspect_ratio: model input W / H.

    Returns:
        ``(center (2,), roi_size (2,))`` of the chosen half, or None when too few keypoints are labelled, or when
        the keypoint set has no halves (``upper_ids`` all keypoints or none: a hand, a face, a set read from a
        dataset file).
    """
    lab = visible > 0
    if lab.sum() < cfg.half_body_min_kpts:
        return None
    upper_mask = np.zeros(len(visible), dtype=bool)
    upper_mask[list(upper_ids)] = True
    if upper_mask.all() or not upper_mask.any():
        return None
    upper = np.flatnonzero(lab & upper_mask)
    lower = np.flatnonzero(lab & ~upper_mask)
    if len(upper) < cfg.half_body_min_upper and len(lower) < cfg.half_body_min_lower:
        return None
    if len(lower) < cfg.half_body_min_lower:
        chosen = upper
    elif len(upper) < cfg.half_body_min_upper:
        chosen = lower
    else:
        chosen = upper if rng.random() < cfg.half_body_upper_prob else lower
    pts = keypoints[chosen]
    x1, y1 = pts.min(axis=0)
    x2, y2 = pts.max(axis=0)
    w, h = x2 - x1, y2 - y1
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2]), np.array([w, h]) * cfg.half_body_padding


def random_bbox_transform(rng: np.random.Generator, center: np.ndarray, roi: np.ndarray,
                          cfg: AugmentConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Random shift, scale and rotation of a ROI (mmpose 1.x ``RandomBBoxTransform``).

    Returns:
        ``(center, roi_size, rotation_deg)``; rotation in degrees, |r| ≤ ``rotate_factor``.
    """
    center = np.asarray(center, dtype=np.float64).copy()
    roi = np.asarray(roi, dtype=np.float64).copy()
    if rng.random() < cfg.shift_prob:
        center = center + truncnorm(rng, (2,)) * cfg.shift_factor * roi
    lo, hi = cfg.scale_range
    mid, half = (lo + hi) / 2.0, (hi - lo) / 2.0
    roi = roi * (mid + half * truncnorm(rng))
    rot = float(truncnorm(rng) * cfg.rotate_factor) if rng.random() < cfg.rotate_prob else 0.0
    return center, roi, rot


def augment_instance(rng: np.random.Generator, cfg: AugmentConfig, image_width: int, keypoints: np.ndarray,
                     visible: np.ndarray, center: np.ndarray, roi: np.ndarray, flip_index, upper_ids,
                     aspect_ratio: float) -> dict:
    """All geometric augmentations for one instance, in the mmpose order: flip, half-body, shift/scale/rotate.

    Args:
        keypoints: (K, 2) image pixels; visible: (K,); center, roi: (2,) image pixels.

    Returns:
        dict with ``flip`` (bool: the image must be mirrored), ``keypoints``, ``visible``, ``center``, ``roi``
        (all in the possibly mirrored image's pixels) and ``rotation`` (degrees).
    """
    flip = bool(rng.random() < cfg.flip_prob)
    if flip:
        keypoints, visible, center = flip_instance(image_width, keypoints, visible, center, flip_index)
    if rng.random() < cfg.half_body_prob:
        hb = half_body(rng, keypoints, visible, upper_ids, aspect_ratio, cfg)
        if hb is not None:
            center, roi = hb
    center, roi, rot = random_bbox_transform(rng, center, roi, cfg)
    return {"flip": flip, "keypoints": keypoints, "visible": visible, "center": center, "roi": roi, "rotation": rot}


def draw_occlusions(rng: np.random.Generator, cfg: AugmentConfig, crop_size: tuple[int, int]) -> list[tuple[int, ...]]:
    """The rectangles to black out in one training crop (RTMPose's ``CoarseDropout`` stage; zero draws when off).

    The keypoint targets and weights are left as they are: the model learns to place a joint it cannot see from the
    body around it, which is what misses on occluded people need (RTMPose, Jiang et al. 2023, §3.4 / its
    ``albumentation`` config). No random number is drawn when ``cfg.occlusion_prob`` is 0, so turning the option on
    changes nothing else of a run's draws.

    Args:
        rng: the sample's generator (drawn after :func:`augment_instance`).
        cfg: :class:`AugmentConfig` (``occlusion_prob``, ``occlusion_holes``, ``occlusion_size``).
        crop_size: ``(H, W)`` of the model input, pixels.

    Returns:
        a list of ``(x0, y0, x1, y1)`` integer rectangles in crop pixels (end exclusive, inside the crop); empty when
        the crop is not occluded.

    ``cfg`` is validated when it is built (:class:`AugmentConfig` raises ``UsageError`` for sizes outside
    (0, 1] or lo > hi).
    """
    if cfg.occlusion_prob <= 0 or rng.random() >= cfg.occlusion_prob:
        return []
    lo, hi = (float(v) for v in cfg.occlusion_size)
    H, W = (int(v) for v in crop_size)
    boxes = []
    for _ in range(max(0, int(cfg.occlusion_holes))):
        h = max(1, int(round(H * rng.uniform(lo, hi))))
        w = max(1, int(round(W * rng.uniform(lo, hi))))
        y0 = int(rng.integers(0, H - h + 1))
        x0 = int(rng.integers(0, W - w + 1))
        boxes.append((x0, y0, x0 + w, y0 + h))
    return boxes


def apply_occlusions(crop: np.ndarray, boxes: list[tuple[int, ...]]) -> np.ndarray:
    """Black out ``boxes`` (from :func:`draw_occlusions`) in a copy of ``crop`` ((H, W, 3) uint8; 0 = black)."""
    if not boxes:
        return crop
    out = np.array(crop, copy=True)
    for x0, y0, x1, y1 in boxes:
        out[y0:y1, x0:x1] = 0
    return out
