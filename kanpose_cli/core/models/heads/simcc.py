"""SimCC heads: feature map -> per-keypoint x/y logits (spec §5.5)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class SimCCMLPHead(nn.Module):
    """AMFACPose head (§3.5): 1×1 conv C→K·d, reshape channels into K joints × d ("reshape C into N × d per
    joint"), flatten each joint's d·h·w features, then one MLP per axis shared by all joints:
    ``Linear(d·h·w → hidden) → Mish → Linear(hidden → bins)``.

    Args:
        in_channels: C of the fused map.
        feature_size: (h, w) of the fused map.
        num_keypoints: K. embed_dim: d (1, spec §7.2). hidden: MLP width (64). num_bins: (x-bins, y-bins).
        mlp: use the Mish MLP (AMFACPose); a single Linear per axis (original SimCC upsample-free) if False.

    Forward: (B, C, h, w) -> ``(x_logits (B, K, Wb), y_logits (B, K, Hb))``.
    """

    def __init__(self, in_channels: int, feature_size: tuple[int, int], num_keypoints: int, num_bins: tuple[int, int],
                 embed_dim: int = 1, hidden: int = 64, mlp: bool = True):
        super().__init__()
        self.num_keypoints, self.embed_dim = num_keypoints, embed_dim
        self.feature_size, self.num_bins = tuple(feature_size), tuple(num_bins)
        self.proj = nn.Conv2d(in_channels, num_keypoints * embed_dim, 1)
        flat = embed_dim * feature_size[0] * feature_size[1]

        def axis(n_bins: int) -> nn.Module:
            if not mlp:
                return nn.Linear(flat, n_bins)
            return nn.Sequential(nn.Linear(flat, hidden), nn.Mish(inplace=True), nn.Linear(hidden, n_bins))

        self.mlp_x = axis(num_bins[0])
        self.mlp_y = axis(num_bins[1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        feats = self.proj(x).reshape(b, self.num_keypoints, -1)
        return self.mlp_x(feats), self.mlp_y(feats)

    def resize_state(self, state: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, str]]:
        """Checkpoint tensors of this head trained at another input size, resized to this head's sizes
        (progressive resizing: e.g. 128×96 weights to start a 256×192 model; as ViT position embeddings are
        interpolated to a new grid).

        - The first layer of each axis reads the flattened (d, h, w) features of a joint: its weight is
          interpolated bilinearly over (h, w) to this head's feature grid and scaled by (h_old·w_old)/(h·w), so a
          feature map that is the upsampled old one gives the same pre-activations.
        - The layer that writes the bins (the last one, or the only one without the MLP): its weight rows and
          bias are interpolated linearly along the bins, first and last bin kept (bin i codes the coordinate i/k in
          both, and the UDP crop maps pixel 0 and W−1 of one input size to those of the other).

        The old feature grid is found from the checkpoint's shapes (the flattened size and the bins' aspect ratio).
        Tensors whose shapes already fit, or that cannot be resized (another ``embed_dim``, hidden width or
        aspect ratio), are left out.

        Args:
            state: checkpoint tensors of this module, names relative to it (``mlp_x.0.weight``, ...).

        Returns:
            ``{name: (resized tensor, reason)}``, reason like ``"resized: bins 192 -> 384"``.
        """
        own = self.state_dict()
        mlp = isinstance(self.mlp_x, nn.Sequential)
        layers = {axis: ((f"{axis}.0", f"{axis}.2") if mlp else (axis, axis)) for axis in ("mlp_x", "mlp_y")}
        needed = [f"{name}.{p}" for pair in layers.values() for name in pair for p in ("weight", "bias")]
        if any(k not in state for k in needed):
            return {}
        grid = _old_grid(state[f"{layers['mlp_x'][0]}.weight"].shape[1], self.embed_dim,
                         state[f"{layers['mlp_y'][1]}.bias"].shape[0] / state[f"{layers['mlp_x'][1]}.bias"].shape[0])
        if grid is None:
            return {}
        old_grid, new_grid = grid, tuple(self.feature_size)
        grid_note = f"feature grid {old_grid[0]}×{old_grid[1]} -> {new_grid[0]}×{new_grid[1]}"
        out: dict[str, tuple[torch.Tensor, str]] = {}
        for axis, n_bins in (("mlp_x", self.num_bins[0]), ("mlp_y", self.num_bins[1])):
            first, last = layers[axis]
            w_first = self._resize_grid(state[f"{first}.weight"].float(), old_grid)
            if mlp and w_first.shape != own[f"{first}.weight"].shape:
                return {}
            if mlp and old_grid != new_grid:
                out[f"{first}.weight"] = (w_first, f"resized: {grid_note}")
            w_last = w_first if not mlp else state[f"{last}.weight"].float()
            b_last = state[f"{last}.bias"].float()
            old_n = b_last.shape[0]
            if old_n != n_bins:  # rows = bins: linear along them, first and last kept
                w_last = F.interpolate(w_last.t()[None], size=n_bins, mode="linear", align_corners=True)[0].t()
                b_last = F.interpolate(b_last[None, None], size=n_bins, mode="linear", align_corners=True)[0, 0]
            if w_last.shape != own[f"{last}.weight"].shape:
                return {}
            what = ([f"bins {old_n} -> {n_bins}"] if old_n != n_bins else []) + \
                ([grid_note] if not mlp and old_grid != new_grid else [])
            if what:
                out[f"{last}.weight"] = (w_last.contiguous(), "resized: " + ", ".join(what))
                out[f"{last}.bias"] = (b_last.contiguous(), "resized: " + ", ".join(what))
        return out

    def _resize_grid(self, weight: torch.Tensor, old_grid: tuple[int, int]) -> torch.Tensor:
        """(out, d·h_old·w_old) → (out, d·h·w): bilinear over the grid, scaled by (h_old·w_old)/(h·w)."""
        h, w = self.feature_size
        if tuple(old_grid) == (h, w):
            return weight
        grid = weight.reshape(-1, self.embed_dim, *old_grid)
        grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        return grid.reshape(grid.shape[0], -1) * (old_grid[0] * old_grid[1]) / (h * w)


def _old_grid(flat: int, embed_dim: int, aspect: float) -> tuple[int, int] | None:
    """(h, w) with h·w = flat / embed_dim and h / w = aspect (the bins' y/x ratio), or None if none fits."""
    if flat % embed_dim:
        return None
    n = flat // embed_dim
    ws = max(1, round(math.sqrt(n / aspect)))
    for cand in (ws, ws - 1, ws + 1):
        if cand > 0 and n % cand == 0 and abs(n // cand / cand - aspect) < 0.25 * aspect:
            return n // cand, cand
    return None
