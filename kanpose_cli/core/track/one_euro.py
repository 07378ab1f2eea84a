"""The One-Euro filter (Casiez, Roussel & Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for Noisy Input
in Interactive Systems", CHI 2012), applied per track and per keypoint coordinate.

Each scalar signal ``x(t)`` (one keypoint's x or y, in pixels of the original image) goes through an exponential
low-pass filter whose cutoff frequency rises with the signal's speed, so that a still keypoint is smoothed hard
(jitter removed) and a fast one lags little. Reference algorithm (the paper's Fig. / the authors' Python code):

- smoothing factor of a first-order low-pass at cutoff ``fc`` (Hz) for a time step ``dt`` (s):
  ``alpha = 1 / (1 + tau / dt)`` with ``tau = 1 / (2 π fc)``;
- speed ``dx = (x - x̂_prev) / dt`` (pixels per second), itself low-passed at ``d_cutoff`` Hz: ``dx̂``;
- cutoff ``fc = min_cutoff + beta · |dx̂|``;
- output ``x̂ = alpha(fc) · x + (1 - alpha(fc)) · x̂_prev``; the first sample passes unchanged.

Units: ``min_cutoff`` and ``d_cutoff`` in Hz (> 0), ``beta`` in 1/pixel (Hz per pixel/s of speed, ≥ 0), timestamps in
seconds (video time, so results do not depend on how fast the machine runs). Tuning (the paper's advice): with
``beta = 0`` lower ``min_cutoff`` until a still person stops jittering, then raise ``beta`` until fast motion does
not lag. Defaults: ``min_cutoff = 1.0`` Hz, ``beta = 0.01`` /px, ``d_cutoff = 1.0`` Hz.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_MIN_CUTOFF = 1.0
DEFAULT_BETA = 0.01
DEFAULT_D_CUTOFF = 1.0


def smoothing_factor(cutoff_hz, dt_s: float):
    """``alpha = 1 / (1 + 1 / (2 π fc dt))`` of a first-order low-pass (array or scalar ``cutoff_hz``), in (0, 1)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt_s)


def check_parameters(min_cutoff: float, beta: float, d_cutoff: float) -> None:
    """Raise ``ValueError`` unless ``min_cutoff > 0`` Hz, ``beta ≥ 0`` /px and ``d_cutoff > 0`` Hz."""
    if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
        raise ValueError(f"One-Euro parameters need min_cutoff > 0 Hz, d_cutoff > 0 Hz and beta ≥ 0 (got "
                         f"min_cutoff {min_cutoff}, beta {beta}, d_cutoff {d_cutoff})")


class OneEuroFilter:
    """One-Euro filter over an array of independent signals (e.g. (K, 2) keypoint coordinates of one person).

    Args:
        min_cutoff: minimum cutoff frequency in Hz (> 0): lower = smoother when still, more lag.
        beta: speed coefficient in 1/pixel (≥ 0): higher = less lag when moving fast.
        d_cutoff: cutoff of the speed estimate in Hz (> 0).

    Raises:
        ValueError: a parameter out of range.
    """

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA,
                 d_cutoff: float = DEFAULT_D_CUTOFF):
        check_parameters(min_cutoff, beta, d_cutoff)
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.x_prev: np.ndarray | None = None
        self.dx_prev: np.ndarray | None = None
        self.t_prev: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one sample ``x`` (any shape, pixels) taken at time ``t`` (seconds); returns float64, same shape.

        A sample whose time is not after the previous one (``dt ≤ 0``) returns the previous output unchanged.
        """
        x = np.asarray(x, dtype=np.float64)
        if self.x_prev is None or self.x_prev.shape != x.shape:
            self.x_prev, self.dx_prev, self.t_prev = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self.t_prev
        if dt <= 0:
            return self.x_prev.copy()
        dx = (x - self.x_prev) / dt
        dx_hat = smoothing_factor(self.d_cutoff, dt) * dx + (1 - smoothing_factor(self.d_cutoff, dt)) * self.dx_prev
        a = smoothing_factor(self.min_cutoff + self.beta * np.abs(dx_hat), dt)
        x_hat = a * x + (1 - a) * self.x_prev
        self.x_prev, self.dx_prev, self.t_prev = x_hat, dx_hat, float(t)
        return x_hat.copy()


class KeypointSmoother:
    """One :class:`OneEuroFilter` per track id over that person's (K, 2) keypoints (each coordinate its own signal).

    Args:
        min_cutoff, beta, d_cutoff: filter parameters (units in the module docstring).
        forget_s: a track not seen for this many seconds loses its filter state (memory bound; a person who comes
            back later starts afresh).
    """

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA,
                 d_cutoff: float = DEFAULT_D_CUTOFF, forget_s: float = 10.0):
        check_parameters(min_cutoff, beta, d_cutoff)
        self.params = (float(min_cutoff), float(beta), float(d_cutoff))
        self.forget_s = forget_s
        self.filters: dict[int, OneEuroFilter] = {}

    def __call__(self, keypoints: np.ndarray, track_ids: np.ndarray, t: float) -> np.ndarray:
        """Smooth one frame.

        Args:
            keypoints: (N, K, 2) x, y in original-image pixels. track_ids: (N,) ints (each person once).
            t: the frame's time in seconds.

        Returns:
            (N, K, 2) float32 smoothed keypoints, same order.
        """
        out = np.array(keypoints, dtype=np.float32, copy=True)
        for i, tid in enumerate(np.asarray(track_ids).reshape(-1)):
            f = self.filters.get(int(tid))
            if f is None:
                f = self.filters[int(tid)] = OneEuroFilter(*self.params)
            out[i] = f(out[i], t)
        for tid in [k for k, f in self.filters.items() if f.t_prev is not None and t - f.t_prev > self.forget_s]:
            del self.filters[tid]
        return out
