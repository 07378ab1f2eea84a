"""Training losses, selected by name from a model spec's ``loss`` dict (see :func:`build_loss`).

Each loss takes the network outputs and the batched codec targets (dict of tensors from ``codec.encode``) and
returns a scalar tensor.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.registry import Registry


class KLDiscretLoss(nn.Module):
    """KL divergence between SimCC label distributions and softmax(β·logits) (mmpose ``KLDiscretLoss``; spec §5.4).

    AMFACPose's "KLDDiscretLoss with label smoothing and temperature": smoothing lives in the codec's labels,
    the temperature is ``T = 1/beta``.

    For each axis and each (instance, keypoint) row: ``p = log_softmax(beta·z)``; ``t`` = labels, or
    ``softmax(label_beta·labels)`` if ``label_softmax``; ``ℓ = mean over bins of t·(log t − p)``; times the keypoint
    weight. Reduction: ``"batch_mean"`` (default; original SimCC: mean over instances, summed over keypoints and
    axes, divided by K — independent of batch size) or ``"sum"`` (mmpose: summed over instances, divided by K).

    Args (forward):
        outputs: ``(x_logits (B, K, Wb), y_logits (B, K, Hb))``.
        targets: dict with ``target_x`` (B, K, Wb), ``target_y`` (B, K, Hb), ``target_weight`` (B, K).
    """

    def __init__(self, beta: float = 1.0, label_softmax: bool = False, label_beta: float = 10.0,
                 use_target_weight: bool = True, reduction: str = "batch_mean"):
        super().__init__()
        if reduction not in ("batch_mean", "sum"):
            raise ValueError(f"unknown reduction {reduction!r}")
        self.beta, self.label_softmax, self.label_beta = float(beta), bool(label_softmax), float(label_beta)
        self.use_target_weight, self.reduction = bool(use_target_weight), reduction

    def _axis(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float() * self.beta, dim=-1)
        t = F.softmax(labels.float() * self.label_beta, dim=-1) if self.label_softmax else labels.float()
        kl = F.kl_div(log_p, t, reduction="none")  # t * (log t - log p), 0 where t == 0
        return kl.mean(dim=-1)  # (B, K)

    def forward(self, outputs, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        x_logits, y_logits = outputs
        loss = self._axis(x_logits, targets["target_x"]) + self._axis(y_logits, targets["target_y"])
        if self.use_target_weight:
            loss = loss * targets["target_weight"].float()
        B, K = loss.shape
        total = loss.sum() / K
        return total / B if self.reduction == "batch_mean" else total


LOSSES: Registry[type[nn.Module]] = Registry("loss")
LOSSES.register("kl_discret", KLDiscretLoss)


def register_loss(name: str):
    """Decorator adding a loss class to ``LOSSES`` (a :class:`~kanpose_cli.core.registry.Registry`) under ``name``."""
    return LOSSES.register(name)


@register_loss("l1")
class L1CoordLoss(nn.Module):
    """L1 loss for direct coordinate regression (FlatPose Table 5 row 3; pairs with the ``regression`` codec).

    Per (instance, keypoint): ``|x̂ − x| + |ŷ − y|`` in normalised crop units, times the keypoint weight; summed over
    keypoints and divided by K, then averaged over instances (``"batch_mean"``) or not (``"sum"``), as in
    :class:`KLDiscretLoss`.

    Args (forward):
        outputs: (B, K, 2) predicted normalised coords.
        targets: dict with ``target_coords`` (B, K, 2) and ``target_weight`` (B, K).
    """

    def __init__(self, use_target_weight: bool = True, reduction: str = "batch_mean"):
        super().__init__()
        if reduction not in ("batch_mean", "sum"):
            raise ValueError(f"unknown reduction {reduction!r}")
        self.use_target_weight, self.reduction = bool(use_target_weight), reduction

    def forward(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = (outputs.float() - targets["target_coords"].float()).abs().sum(dim=-1)  # (B, K)
        if self.use_target_weight:
            loss = loss * targets["target_weight"].float()
        B, K = loss.shape
        total = loss.sum() / K
        return total / B if self.reduction == "batch_mean" else total


@register_loss("joints_mse")
class JointsMSELoss(nn.Module):
    """Heatmap MSE of ViTPose (``mmpose/models/losses/mse_loss.py::JointsMSELoss``; spec §2.3).

    For each joint j: mean over batch × h·w of ``(w_j·pred_j − w_j·target_j)²``; summed over joints, divided by K,
    times ``loss_weight``. No 0.5 factor (unlike the HRNet original).

    Args (forward):
        outputs: (B, K, h, w) predicted heatmaps.
        targets: dict with ``heatmaps`` (B, K, h, w) and ``target_weight`` (B, K) (from the ``heatmap`` codec).
    """

    def __init__(self, use_target_weight: bool = True, loss_weight: float = 1.0):
        super().__init__()
        self.use_target_weight, self.loss_weight = bool(use_target_weight), float(loss_weight)

    def forward(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        diff = outputs.float() - targets["heatmaps"].float()
        if self.use_target_weight:
            diff = diff * targets["target_weight"].float()[:, :, None, None]
        return diff.pow(2).mean() * self.loss_weight  # == Σ_j mean_{B,h,w}(·) / K


def build_loss(config: dict) -> nn.Module:
    """Build a loss from ``{"type": name, **kwargs}``.

    Raises:
        UsageError: no ``"type"`` or an unknown loss name (exit code 2; the message names close matches).
    """
    cfg = dict(config)
    if "type" not in cfg:
        raise UsageError(f"loss settings need a 'type' (one of {', '.join(LOSSES)}); got {sorted(cfg)}")
    return LOSSES.get(cfg.pop("type"))(**cfg)
