"""Optimiser parameter groups (layer-wise lr decay, no weight decay on 1-D params), lr schedule and EMA.

References: ViTPose ``layer_decay_optimizer_constructor.py`` (``get_num_layer_for_vit``, layer-wise lr decay, no
weight decay on 1-D params and ``pos_embed``), mmcv ``LinearWarmup`` + ``MultiStep``/``CosineAnnealing`` lr
policies, mmpose ``ExpMomentumEMA`` (RTMPose/FlatPose); spec §2.7, §3.7, §7.2, §8.7.
"""

from __future__ import annotations

import copy
import math

import torch

from kanpose_cli.core.training.config import SchedConfig


def layer_id(name: str, num_layers: int, group0_keys=()) -> int:
    """ViTPose ``get_num_layer_for_vit``: names containing a ``group0_keys`` entry -> 0, ``blocks.i.`` -> i + 1,
    everything else (neck, head) ``num_layers + 1``."""
    if any(k in name for k in group0_keys):
        return 0
    parts = name.split(".")
    for j, p in enumerate(parts[:-1]):
        if p == "blocks" and parts[j + 1].isdigit():
            return int(parts[j + 1]) + 1
    return num_layers + 1


def param_groups(model: torch.nn.Module, weight_decay: float, layer_decay: float | None = None,
                 no_decay_keys=("pos_embed", "cls_token"),
                 group0_keys=("patch_embed", "pos_embed", "cls_token")) -> list[dict]:
    """AdamW parameter groups.

    No weight decay for 1-D parameters (norm weights, biases), ``*.bias`` and names containing ``no_decay_keys``.
    With ``layer_decay`` (ViTPose): the ViT's blocks are found by ``blocks.N.`` in the parameter names; with
    ``L = max N + 1`` and ids from :func:`layer_id`, the lr scale is ``layer_decay ** (L + 1 − id)`` (patch/pos
    embedding ``rate^(L+1)`` ... head 1).

    Returns:
        Groups ``{"params", "weight_decay", "lr_scale", "group_name"}`` (the trainer multiplies the lr by
        ``lr_scale``).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    num_layers = 0
    if layer_decay is not None:
        ids = [layer_id(n, 10**6) for n, _ in named]
        num_layers = max([i for i in ids if i < 10**6 + 1] + [0])
    groups: dict[tuple, dict] = {}
    for n, p in named:
        no_wd = p.ndim <= 1 or n.endswith(".bias") or any(k in n for k in no_decay_keys)
        lid = layer_id(n, num_layers, group0_keys) if layer_decay is not None else 0
        scale = float(layer_decay) ** (num_layers + 1 - lid) if layer_decay is not None else 1.0
        key = (no_wd, lid)
        if key not in groups:
            groups[key] = {"params": [], "weight_decay": 0.0 if no_wd else float(weight_decay), "lr_scale": scale,
                           "group_name": f"layer{lid}_{'no_decay' if no_wd else 'decay'}"}
        groups[key]["params"].append(p)
    return list(groups.values())


class LrSchedule:
    """Per-iteration lr factor: linear warmup (mmcv ``LinearWarmup``) then MultiStep or cosine.

    ``factor(step) = warm(step) · base(step)`` with ``warm = r + (1 − r)·step/warmup_iters`` for
    ``step < warmup_iters`` (r = ``warmup_ratio``; ``warmup_iters`` = ``min(sched.warmup_iters,
    floor(sched.warmup_max_fraction · epochs · iters_per_epoch))``, so a short run reaches its base lr); ``base`` =
    ``gamma^(#milestones ≤ epoch)`` (multistep, epochs
    0-based, ``epoch = step // iters_per_epoch``) or ``m + (1 − m)·(1 + cos(π·t))/2`` over all iterations
    (cosine, m = ``min_lr_ratio``). With ``scale_with_epochs`` the milestones, written for ``milestones_epochs``
    epochs, are rescaled to ``epochs`` and rounded. The only state is the step counter (kept by the trainer).

    Args:
        sched: the schedule settings. epochs: this run's epochs. iters_per_epoch: optimiser steps per epoch.
    """

    def __init__(self, sched: SchedConfig, epochs: int, iters_per_epoch: int):
        self.type = sched.type
        self.gamma = float(sched.gamma)
        self.min_ratio = float(sched.min_lr_ratio)
        self.warmup_ratio = float(sched.warmup_ratio)
        self.epochs, self.ipe = int(epochs), max(1, int(iters_per_epoch))
        self.total_steps = self.epochs * self.ipe
        cap = int(math.floor(float(sched.warmup_max_fraction) * self.total_steps + 1e-9))
        self.warmup_iters = max(0, min(int(sched.warmup_iters), cap))
        ms = [float(m) for m in sched.milestones]
        base = sched.milestones_epochs
        if sched.scale_with_epochs and base and base != epochs:
            ms = [m * epochs / base for m in ms]
        self.milestones = [int(round(m)) for m in ms]

    def factor(self, step: int) -> float:
        """lr multiplier at optimiser step ``step`` (0-based)."""
        if self.type == "multistep":
            epoch = step // self.ipe
            base = self.gamma ** sum(1 for m in self.milestones if epoch >= m)
        else:
            total = max(1, self.epochs * self.ipe)
            t = min(1.0, step / total)
            base = self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        if step < self.warmup_iters:
            base *= self.warmup_ratio + (1 - self.warmup_ratio) * step / self.warmup_iters
        return base


class ModelEMA:
    """mmpose ``ExpMomentumEMA``: ``ema = (1 − m_t)·ema + m_t·param`` with
    ``m_t = (1 − momentum)·exp(−(1 + t)/gamma) + momentum`` (t = updates so far); float buffers averaged too,
    integer buffers copied.

    Attributes:
        module: the averaged copy (eval mode, no grad). updates: number of :meth:`update` calls.
    """

    def __init__(self, model: torch.nn.Module, momentum: float = 2e-4, gamma: float = 2000.0):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.momentum, self.gamma, self.updates = float(momentum), float(gamma), 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """One EMA step towards ``model``'s current weights."""
        m = (1 - self.momentum) * math.exp(-(1 + self.updates) / self.gamma) + self.momentum
        src = model.state_dict()
        for k, v in self.module.state_dict().items():
            s = src[k].detach()
            if v.is_floating_point():
                v.mul_(1 - m).add_(s.to(v.dtype), alpha=m)
            else:
                v.copy_(s)
        self.updates += 1

    def state_dict(self) -> dict:
        """``{"module": state dict, "updates": int}``."""
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
