"""SimCC coordinate-classification codec (Li et al., "SimCC: a Simple Coordinate Classification Perspective for
Human Pose Estimation", ECCV 2022; mmpose ``codecs/simcc_label.py``). Spec §5.

Each keypoint becomes two 1-D distributions over ``W·k`` x-bins and ``H·k`` y-bins (split ratio ``k``); bin ``b``
stands for crop coordinate ``b / k``.

Deviation from mmpose (documented): labels are centred at the exact sub-bin position ``k·x`` instead of
``round(k·x)`` (a sampled Gaussian at the real centre, or a one-hot split linearly between the two neighbouring
bins), and the decode refines the argmax below one bin: ``"parabola"`` fits a parabola to the log-probabilities
of three neighbouring bins (a 1-D DARK step, Zhang et al. CVPR 2020; exact for Gaussian-shaped outputs, even at the
crop border) and ``"expectation"`` takes the probability-weighted mean within ±``window`` bins of the argmax (suits
one-hot-trained, peaky outputs). Default: parabola for Gaussian labels, expectation for smoothed one-hot. Together
they remove SimCC's quantisation error (±0.25 px at k = 2), which the round-trip test checks. ``decode="argmax"``
gives mmpose's decoder.

Score convention (spec §1.5 asks to pick one): per axis, the softmax probability of ``beta · logits`` that lies
within ±``window`` bins of the argmax, divided by the same mass for a perfect target of this codec; the keypoint
confidence is the ``min`` over the two axes, clipped to [0, 1]. A prediction identical to the training label
scores 1.0 whatever σ or label smoothing is used (a raw peak probability would not: a label split between two
bins peaks at half), and the COCO rescoring threshold 0.2 keeps its meaning.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from kanpose_cli.core.codecs.base import KeypointCodec


class SimCCCodec(KeypointCodec):
    """SimCC labels and decoding.

    Args:
        input_size: model input ``(H, W)`` in pixels.
        split_ratio: ``k``, bins per pixel (2.0 in SimCC, AMFACPose, FlatPose).
        label: ``"gaussian"`` (σ in bins per axis) or ``"smoothed_onehot"`` (label smoothing ``label_smoothing``).
        sigma: Gaussian σ in bins, one value or ``(σx, σy)``.
        label_smoothing: ε for ``"smoothed_onehot"``: the peak gets ``1 − ε``, every other bin ``ε / (n − 1)``.
        normalize: divide Gaussian labels by ``σ√(2π)`` (mmpose default True; RTMPose False).
        beta: logit temperature used at decode time (``softmax(beta · z)``); match the loss's ``beta``.
        decode: ``"parabola"``, ``"expectation"``, ``"argmax"`` or None (parabola for Gaussian labels, expectation
            for smoothed one-hot).
        window: half-width in bins of the expectation window (default 3σ, at least 2).

    Raises:
        ValueError: unknown ``label``/``decode`` or non-positive sizes.
    """

    type = "simcc"

    def __init__(self, input_size, split_ratio: float = 2.0, label: str = "gaussian", sigma=6.0,
                 label_smoothing: float = 0.0, normalize: bool = True, beta: float = 1.0,
                 decode: str | None = None, window: int | None = None):
        super().__init__(input_size)
        if label not in ("gaussian", "smoothed_onehot"):
            raise ValueError(f"unknown SimCC label type {label!r}")
        if decode is None:
            decode = "parabola" if label == "gaussian" else "expectation"
        if decode not in ("parabola", "expectation", "argmax"):
            raise ValueError(f"unknown SimCC decode {decode!r}")
        self.split_ratio = float(split_ratio)
        self.label = label
        sig = (float(sigma), float(sigma)) if np.isscalar(sigma) else (float(sigma[0]), float(sigma[1]))
        self.sigma = sig
        self.label_smoothing = float(label_smoothing)
        self.normalize = bool(normalize)
        self.beta = float(beta)
        self.decode_mode = decode
        H, W = self.input_size
        self.num_bins = (int(round(W * self.split_ratio)), int(round(H * self.split_ratio)))  # (x-bins, y-bins)
        if window is None:
            window = max(2, int(math.ceil(3 * max(sig)))) if label == "gaussian" else 2
        self.window = int(window)
        self._peak = self._target_peak()

    # ----------------------------------------------------------------------------------------------- encode
    def _axis_labels(self, mu: np.ndarray, n_bins: int, sigma: float) -> np.ndarray:
        """(K,) sub-bin centres -> (K, n_bins) float32 labels."""
        bins = np.arange(n_bins, dtype=np.float64)[None, :]
        if self.label == "gaussian":
            lab = np.exp(-((bins - mu[:, None]) ** 2) / (2.0 * sigma**2))
            if self.normalize:
                lab = lab / (sigma * math.sqrt(2.0 * math.pi))
            return lab.astype(np.float32)
        eps = self.label_smoothing
        lab = np.full((mu.shape[0], n_bins), eps / (n_bins - 1), dtype=np.float64)
        lo = np.floor(mu).astype(np.int64)
        frac = mu - lo
        peak = 1.0 - eps - eps / (n_bins - 1)  # extra mass on top of the background, split between 2 bins
        for k in range(mu.shape[0]):
            if 0 <= lo[k] < n_bins:
                lab[k, lo[k]] += peak * (1.0 - frac[k])
            if 0 <= lo[k] + 1 < n_bins:
                lab[k, lo[k] + 1] += peak * frac[k]
        return lab.astype(np.float32)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Encode one instance.

        Args:
            keypoints: (K, 2) crop pixels (x, y).
            visible: (K,) in [0, 1]; entries < 0.5 get all-zero labels and weight 0.

        Returns:
            ``{"target_x": (K, Wb), "target_y": (K, Hb), "target_weight": (K,)}`` float32. A keypoint whose
            label window (±3σ, or the bin itself for one-hot) lies fully outside the bins gets weight 0.
        """
        kpts = np.asarray(keypoints, dtype=np.float64)
        vis = np.asarray(visible, dtype=np.float64)
        mu = kpts * self.split_ratio  # (K, 2) bin units
        wx, wy = self.num_bins
        tx = self._axis_labels(mu[:, 0], wx, self.sigma[0])
        ty = self._axis_labels(mu[:, 1], wy, self.sigma[1])
        reach = np.array([3 * self.sigma[0], 3 * self.sigma[1]]) if self.label == "gaussian" else np.array([0.5, 0.5])
        inside = ((mu + reach >= 0) & (mu - reach <= np.array([wx - 1, wy - 1]))).all(axis=1)
        weight = ((vis >= 0.5) & inside).astype(np.float32)
        tx[weight == 0] = 0.0
        ty[weight == 0] = 0.0
        return {"target_x": tx, "target_y": ty, "target_weight": weight}

    # ----------------------------------------------------------------------------------------------- decode
    def _target_peak(self) -> tuple[float, float]:
        """Per axis (x, y): probability mass within ±window of the argmax for a perfect prediction."""
        masses = []
        for n, sigma in zip(self.num_bins, self.sigma):
            lab = self._axis_labels(np.array([n / 2.0 + 0.25]), n, sigma)[0].astype(np.float64)
            lab = lab / lab.sum()
            c = int(lab.argmax())
            masses.append(float(lab[max(0, c - self.window): c + self.window + 1].sum()))
        return masses[0], masses[1]

    def _decode_axis(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, n) logits -> (B, K) sub-bin location and (B, K) probability mass within ±window of the argmax."""
        prob = torch.softmax(logits.float() * self.beta, dim=-1)
        idx = prob.argmax(dim=-1)
        n = prob.shape[-1]
        offsets = torch.arange(-self.window, self.window + 1, device=prob.device)
        pos = idx.unsqueeze(-1) + offsets  # (B, K, 2w+1)
        valid = (pos >= 0) & (pos < n)
        w = torch.gather(prob, -1, pos.clamp(0, n - 1)) * valid
        mass = w.sum(-1)
        if self.decode_mode == "argmax":
            return idx.to(prob.dtype), mass
        if self.decode_mode == "parabola":
            log_p = torch.log_softmax(logits.float() * self.beta, dim=-1)
            centre = idx.clamp(1, n - 2).unsqueeze(-1)
            three = torch.gather(log_p, -1, torch.cat([centre - 1, centre, centre + 1], dim=-1))
            d1 = (three[..., 2] - three[..., 0]) * 0.5
            d2 = three[..., 2] - 2.0 * three[..., 1] + three[..., 0]
            offset = torch.where(d2 < -1e-9, -d1 / d2.clamp(max=-1e-9), torch.zeros_like(d1)).clamp(-2.0, 2.0)
            loc = centre.squeeze(-1).to(prob.dtype) + offset
            # Fall back to the argmax where the fit is not a clear maximum.
            loc = torch.where((loc - idx.to(prob.dtype)).abs() <= 1.0, loc, idx.to(prob.dtype))
            return loc, mass
        loc = (w * pos.to(prob.dtype)).sum(-1) / mass.clamp_min(1e-12)
        return loc, mass

    def decode(self, outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode SimCC logits.

        Args:
            outputs: ``(x_logits (B, K, Wb), y_logits (B, K, Hb))``.

        Returns:
            ``(keypoints (B, K, 2) crop pixels, scores (B, K) in [0, 1])`` (see the module's score convention).
        """
        x_logits, y_logits = outputs
        x, px = self._decode_axis(x_logits)
        y, py = self._decode_axis(y_logits)
        kpts = torch.stack([x, y], dim=-1) / self.split_ratio
        scores = torch.minimum(px / self._peak[0], py / self._peak[1]).clamp(0.0, 1.0)
        return kpts, scores

    def flip_back(self, outputs, flip_index):
        """Mirror SimCC outputs of a flipped crop: swap keypoints by ``flip_index``, reverse the x-bins.

        With sub-bin labels centred at ``k·x`` and a UDP-consistent flip ``x -> W - 1 - x``, the bin of a mirrored
        point is ``k·(W − 1) − b``, whereas reversing a length-``k·W`` vector gives ``k·W − 1 − b``: the flipped-back
        x-vector is shifted by ``k − 1`` bins toward lower indices (one bin at k = 2, as in the original SimCC repo's
        ``SHIFT_HEATMAP``) to compensate. Spec §5.3.
        """
        x_logits, y_logits = outputs
        idx = torch.as_tensor(list(flip_index), device=x_logits.device)
        x = x_logits.index_select(1, idx).flip(-1)
        shift = int(round(self.split_ratio - 1.0))
        if shift > 0:
            x = torch.cat([x[..., shift:], x[..., -1:].expand(*x.shape[:-1], shift)], dim=-1)
        return x, y_logits.index_select(1, idx)

    def config(self) -> dict:
        return {
            "type": self.type,
            "split_ratio": self.split_ratio,
            "label": self.label,
            "sigma": list(self.sigma),
            "label_smoothing": self.label_smoothing,
            "normalize": self.normalize,
            "beta": self.beta,
            "decode": self.decode_mode,
            "window": self.window,
        }
