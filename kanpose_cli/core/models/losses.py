"""Training losses, selected by name from a model spec's ``loss`` dict (see :func:`build_loss`).

Each loss takes the network outputs and the batched codec targets (dict of tensors from ``codec.encode``) and
returns a scalar tensor.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


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


LOSSES: dict[str, type[nn.Module]] = {"kl_discret": KLDiscretLoss}


def register_loss(name: str):
    """Decorator adding a loss class to ``LOSSES`` under ``name``."""

    def deco(cls):
        LOSSES[name] = cls
        return cls

    return deco


def build_loss(config: dict) -> nn.Module:
    """Build a loss from ``{"type": name, **kwargs}``; raises ValueError for an unknown type."""
    cfg = dict(config)
    kind = cfg.pop("type")
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[kind](**cfg)
