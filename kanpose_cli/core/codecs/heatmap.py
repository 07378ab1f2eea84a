"""UDP Gaussian heatmap codec with DARK-UDP decoding (ViTPose / mmpose 0.x; spec §2.4–2.6).

References: Huang et al., "The Devil is in the Details: Delving into Unbiased Data Processing for Human Pose
Estimation" (CVPR 2020) for UDP; Zhang et al., "Distribution-Aware Coordinate Representation for Human Pose
Estimation" (CVPR 2020) for DARK; ViTPose ``top_down_transform.py::_udp_generate_target`` and
``top_down_eval.py::post_dark_udp`` for the exact procedure.

Coordinates: heatmap pixel ``x_hm`` ↔ crop pixel ``x = x_hm · (W − 1)/(W_hm − 1)`` (UDP; same for y).
Only the UDP variant is implemented (all heatmap models here use UDP crops).

Confidence: the maximum value of each (merged) heatmap, clipped to [0, 1] (ViTPose's ``maxvals``; a perfect
σ = 2 target peaks at ≤ 1).

Deviation (documented): mmpose sets the location of a keypoint whose heatmap maximum is ≤ 0 to −1; here it keeps
its argmax (its score is 0 anyway).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from kanpose_cli.core.codecs.base import KeypointCodec, register_codec


def _gaussian_kernel1d(kernel: int, device, dtype) -> torch.Tensor:
    """OpenCV's Gaussian kernel for ``sigma = 0``: σ = 0.3·((K − 1)/2 − 1) + 0.8, normalised to sum 1."""
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    x = torch.arange(kernel, device=device, dtype=torch.float64) - (kernel - 1) / 2.0
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def gaussian_blur(heatmaps: torch.Tensor, kernel: int = 11) -> torch.Tensor:
    """Separable Gaussian blur of (B, K, h, w) maps like ``cv2.GaussianBlur(hm, (K, K), 0)`` (reflect-101 border).

    Raises ValueError for an even kernel.
    """
    if kernel % 2 == 0:
        raise ValueError(f"blur kernel must be odd, got {kernel}")
    b, k, h, w = heatmaps.shape
    g = _gaussian_kernel1d(kernel, heatmaps.device, heatmaps.dtype)
    r = kernel // 2
    x = heatmaps.reshape(b * k, 1, h, w)
    # reflect padding needs pad < size; fall back to replicate for tiny maps
    mode = "reflect" if min(h, w) > r else "replicate"
    x = F.pad(x, (r, r, r, r), mode=mode)
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    x = F.conv2d(x, g.view(1, 1, -1, 1))
    return x.reshape(b, k, h, w)


@register_codec
class HeatmapCodec(KeypointCodec):
    """UDP Gaussian heatmaps (σ in heatmap pixels) and DARK-UDP decoding.

    Args:
        input_size: model input ``(H, W)`` pixels.
        heatmap_size: ``(h, w)`` of the network output; default input/4 (64×48 for 256×192).
        sigma: Gaussian σ in heatmap pixels (2.0).
        blur_kernel: DARK's Gaussian blur size (11; ViTPose ``modulate_kernel``).
        dark: refine the argmax with DARK (True) or return the integer argmax (False).

    Raises:
        ValueError: non-positive sizes or sigma.
    """

    type = "heatmap"

    def __init__(self, input_size, heatmap_size=None, sigma: float = 2.0, blur_kernel: int = 11, dark: bool = True):
        super().__init__(input_size)
        H, W = self.input_size
        if heatmap_size is None:
            heatmap_size = (H // 4, W // 4)
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        if min(self.heatmap_size) < 2 or sigma <= 0:
            raise ValueError(f"bad heatmap codec settings: heatmap_size={heatmap_size}, sigma={sigma}")
        self.sigma = float(sigma)
        self.blur_kernel = int(blur_kernel)
        self.dark = bool(dark)
        h, w = self.heatmap_size
        # crop pixels per heatmap pixel (UDP): (x, y)
        self.feat_stride = ((W - 1.0) / (w - 1.0), (H - 1.0) / (h - 1.0))

    # ----------------------------------------------------------------------------------------------- encode
    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """UDP Gaussian targets for one instance (ViTPose ``_udp_generate_target``, GaussianHeatmap).

        Args:
            keypoints: (K, 2) crop pixels (x, y).
            visible: (K,) in [0, 1]; entries < 0.5 get weight 0 and an all-zero map.

        Returns:
            ``{"heatmaps": (K, h, w) float32 in [0, 1], "target_weight": (K,) float32}``. The Gaussian is evaluated
            at the exact sub-pixel centre μ = x / feat_stride inside a (6σ+1)² window around round(μ); weight 0 if
            that window lies fully outside the map.
        """
        kpts = np.asarray(keypoints, dtype=np.float64)
        vis = np.asarray(visible, dtype=np.float64)
        h, w = self.heatmap_size
        K = kpts.shape[0]
        mu = kpts / np.array(self.feat_stride)  # (K, 2) heatmap pixels
        radius = int(math.ceil(self.sigma * 3))
        centre = np.floor(mu + 0.5)
        ul, br = centre - radius, centre + radius + 1
        inside = ~((ul[:, 0] >= w) | (ul[:, 1] >= h) | (br[:, 0] < 0) | (br[:, 1] < 0))
        weight = ((vis >= 0.5) & inside & np.isfinite(mu).all(axis=1)).astype(np.float32)
        xs = np.arange(w, dtype=np.float64)[None, None, :]
        ys = np.arange(h, dtype=np.float64)[None, :, None]
        mu_s = np.nan_to_num(mu)
        cen = np.nan_to_num(centre)
        g = np.exp(-((xs - mu_s[:, 0, None, None]) ** 2 + (ys - mu_s[:, 1, None, None]) ** 2) / (2 * self.sigma**2))
        window = (np.abs(xs - cen[:, 0, None, None]) <= radius) & (np.abs(ys - cen[:, 1, None, None]) <= radius)
        heatmaps = np.where(window, g, 0.0) * weight[:, None, None]
        return {"heatmaps": heatmaps.astype(np.float32).reshape(K, h, w), "target_weight": weight}

    # ----------------------------------------------------------------------------------------------- decode
    def _dark_udp(self, heatmaps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Newton step on the blurred log-heatmap at the integer argmax (ViTPose ``post_dark_udp``).

        heatmaps (B, K, h, w); coords (B, K, 2) integer (x, y) -> refined (B, K, 2) heatmap pixels.
        """
        b, k, h, w = heatmaps.shape
        hm = gaussian_blur(heatmaps, self.blur_kernel).clamp(0.001, 50.0).log()
        hm = F.pad(hm.reshape(b * k, 1, h, w), (1, 1, 1, 1), mode="replicate").reshape(b, k, h + 2, w + 2)
        flat = hm.reshape(b, k, -1)
        px = coords[..., 0].long() + 1
        py = coords[..., 1].long() + 1
        W2 = w + 2

        def at(dx: int, dy: int) -> torch.Tensor:
            return torch.gather(flat, 2, ((py + dy) * W2 + (px + dx)).unsqueeze(-1)).squeeze(-1)

        i0 = at(0, 0)
        ix1, ix1_ = at(1, 0), at(-1, 0)
        iy1, iy1_ = at(0, 1), at(0, -1)
        ix1y1, ix1_y1_ = at(1, 1), at(-1, -1)
        dx = 0.5 * (ix1 - ix1_)
        dy = 0.5 * (iy1 - iy1_)
        dxx = ix1 - 2 * i0 + ix1_
        dyy = iy1 - 2 * i0 + iy1_
        dxy = 0.5 * (ix1y1 - ix1 - iy1 + i0 + i0 - ix1_ - iy1_ + ix1_y1_)
        eps = float(np.finfo(np.float32).eps)
        a, d = dxx + eps, dyy + eps
        det = a * d - dxy * dxy
        safe = det != 0
        det = torch.where(safe, det, torch.ones_like(det))
        ox = (d * dx - dxy * dy) / det
        oy = (-dxy * dx + a * dy) / det
        offset = torch.stack([ox, oy], dim=-1) * safe.unsqueeze(-1)
        offset = torch.nan_to_num(offset, nan=0.0, posinf=0.0, neginf=0.0)
        return coords - offset

    def decode_heatmap_pixels(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, h, w) -> ``(locations (B, K, 2) heatmap pixels (x, y), raw maxima (B, K))``."""
        hm = heatmaps.float()
        b, k, h, w = hm.shape
        maxval, idx = hm.reshape(b, k, -1).max(dim=-1)
        coords = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], dim=-1).to(hm.dtype)
        if self.dark:
            coords = self._dark_udp(hm, coords)
        return coords, maxval

    def decode(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode heatmaps with argmax + DARK-UDP.

        Args:
            outputs: (B, K, h, w) heatmaps (any float dtype; computed in float32).

        Returns:
            ``(keypoints (B, K, 2) float32 crop pixels (x, y), scores (B, K) = max heatmap value clipped to [0, 1])``.
        """
        coords, maxval = self.decode_heatmap_pixels(outputs)
        h, w = outputs.shape[-2:]
        H, W = self.input_size
        scale = torch.tensor([(W - 1.0) / (w - 1.0), (H - 1.0) / (h - 1.0)], device=coords.device)
        return coords * scale, maxval.clamp(0.0, 1.0)

    def flip_back(self, outputs: torch.Tensor, flip_index) -> torch.Tensor:
        """Heatmaps of a mirrored crop -> heatmaps of the original crop: swap channels with ``flip_index`` and
        reverse the width. No one-pixel shift: with UDP, mirroring ``x -> W − 1 − x`` maps heatmap column ``j`` to
        ``w − 1 − j`` exactly (spec §2.6, ``shift_heatmap=False``). Applying it twice is the identity.

        (B, K, h, w) -> (B, K, h, w).
        """
        idx = torch.as_tensor(list(flip_index), device=outputs.device)
        return outputs.index_select(1, idx).flip(-1)

    def config(self) -> dict:
        return {"type": self.type, "heatmap_size": list(self.heatmap_size), "sigma": self.sigma,
                "blur_kernel": self.blur_kernel, "dark": self.dark}
