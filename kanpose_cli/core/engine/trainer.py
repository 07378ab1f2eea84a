"""Training engine: recipes, optimiser/scheduler/EMA, resumable checkpoints, DDP, logging, best/last export.

References: mmpose 0.x/1.x training loop and ViTPose's ``layer_decay_optimizer_constructor.py`` (layer-wise lr
decay, no weight decay on 1-D params and ``pos_embed``), mmpose ``ExpMomentumEMA`` (RTMPose/FlatPose), mmcv
``LinearWarmup`` + ``MultiStep``/``CosineAnnealing`` lr policies (spec §2.7, §3.7, §7.2, §8.7).

Config (one JSON recipe per family in ``kanpose_cli/core/recipes/<family>.json``, overridden by CLI options and
``--set key=value``; the effective config is saved as ``<run>/config.json``)::

    model, model_overrides, init, epochs, batch (per process), workers, seed,
    optim {lr, betas, weight_decay, layer_decay, no_decay_keys, group0_keys},
    sched {type multistep|cosine, milestones (epochs), gamma, min_lr_ratio, warmup_iters, warmup_ratio,
           scale_with_epochs}, clip_grad, ema {enabled, momentum, gamma}, amp none|bf16|fp16, channels_last,
    sync_bn, aug {see AugmentConfig} or null, val {every, flip, batch}, save_every_steps,
    data {train: [{ann, images}], val: {ann, images} or null, repeat (passes over the data per epoch, 1)}, device

Run directory ``runs/train/expN``: ``config.json``, ``state/last.pt`` (full training state, written atomically
every epoch and every ``save_every_steps`` steps; ``torch.load(..., weights_only=True)`` safe: tensors, numbers,
strings, lists and dicts only), ``weights/{last,best}.safetensors`` (pose checkpoints by validation AP, via
:func:`kanpose_cli.core.weights.save_checkpoint`), ``results.csv`` (one row per epoch) and ``results.png``.

Resume: the state holds model, optimiser, scheduler step, EMA, grad scaler, RNG states (torch, CUDA, numpy, Python),
epoch, step and the position inside the epoch. Sampling order is a function of ``(seed, epoch)`` and augmentation of
``(seed, epoch, index)``, so a resumed run continues exactly where the checkpoint was taken.
"""

from __future__ import annotations

import copy
import csv
import difflib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from kanpose_cli.core.data.augment import AugmentConfig
from kanpose_cli.core.data.dataset import TopDownDataset, collate, load_coco_instances
from kanpose_cli.core.errors import DeviceError, InputError, UsageError
from kanpose_cli.core.io import RunDir, atomic_path, write_text_atomic
from kanpose_cli.core.models.losses import build_loss
from kanpose_cli.core.models.registry import PoseModel, create_model, get_spec
from kanpose_cli.core.paths import keep_third_party_files_in_cache

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
STATE_FORMAT = "kanpose-train-state/1"
FREE_FORM_KEYS = ("model_overrides", "data")  # sections whose sub-keys are not checked against the recipe


# ------------------------------------------------------------------------------------------------- configuration
def load_recipe(family: str) -> dict:
    """The family's recipe dict (``recipes/<family>.json``) with the generic keys filled in.

    Raises:
        UsageError: no recipe for ``family``.
    """
    path = RECIPES_DIR / f"{family}.json"
    if not path.is_file():
        known = sorted(p.stem for p in RECIPES_DIR.glob("*.json"))
        raise UsageError(f"no training recipe for family {family!r} (known: {', '.join(known)})")
    cfg = json.loads(path.read_text())
    cfg.pop("_reference", None)
    cfg.setdefault("model_overrides", {})
    cfg.setdefault("init", None)
    cfg.setdefault("data", {"train": [], "val": None})
    cfg.setdefault("device", "cpu")
    cfg["recipe"] = family
    return cfg


def recipe_for_model(model: str) -> dict:
    """Recipe of ``model``'s family with ``model`` set (raises UsageError for unknown models/families)."""
    cfg = load_recipe(get_spec(model).family)
    cfg["model"] = model
    return cfg


def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested dict (``{"optim": {"lr": 1}} -> {"optim.lr": 1}``)."""
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in FREE_FORM_KEYS:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def parse_value(text: str):
    """``--set`` value: JSON if it parses (numbers, true/false/null, lists, dicts), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(cfg: dict, sets: list[str] | None) -> dict:
    """Apply ``key=value`` overrides (dotted keys) to a copy of ``cfg``.

    Keys must exist in the recipe (``model_overrides.*`` is free-form: the model config checks it); unknown keys
    raise :class:`UsageError` with the closest known key.
    """
    cfg = copy.deepcopy(cfg)
    known = set(flatten(cfg))
    known |= {".".join(k.split(".")[:i]) for k in list(known) for i in range(1, k.count(".") + 1)}  # whole sections
    known |= {f"aug.{f}" for f in AugmentConfig.__dataclass_fields__}
    for item in sets or []:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected key=value (e.g. --set optim.lr=5e-4)")
        key, value = item.split("=", 1)
        key = key.strip()
        free = any(key.startswith(f + ".") for f in FREE_FORM_KEYS)
        if key not in known and not free:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(sorted(known))}"
            raise UsageError(f"--set: unknown config key {key!r}{hint}")
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            if node.get(p) is None:
                node[p] = {}
            node = node[p]
        node[parts[-1]] = parse_value(value)
    return cfg


# ------------------------------------------------------------------------------------------------- optimisation
def _layer_id(name: str, num_layers: int, group0_keys) -> int:
    """ViTPose ``get_num_layer_for_vit``: group-0 keys -> 0, ``blocks.i.`` -> i + 1, everything else num_layers + 1."""
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
    ``L = max N + 1`` and ids from :func:`_layer_id`, the lr scale is ``layer_decay ** (L + 1 − id)`` (patch/pos
    embedding ``rate^(L+1)``... head 1). Each group carries ``lr_scale``.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    num_layers = 0
    if layer_decay is not None:
        ids = [_layer_id(n, 10**6, ()) for n, _ in named]
        num_layers = max([i for i in ids if i < 10**6 + 1] + [0])
    groups: dict[tuple, dict] = {}
    for n, p in named:
        no_wd = p.ndim <= 1 or n.endswith(".bias") or any(k in n for k in no_decay_keys)
        lid = _layer_id(n, num_layers, group0_keys) if layer_decay is not None else 0
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
    ``step < warmup_iters`` (r = ``warmup_ratio``); ``base`` = ``gamma^(#milestones ≤ epoch)`` (multistep, epochs
    0-based, ``epoch = step // iters_per_epoch``) or ``m + (1 − m)·(1 + cos(π·t))/2`` over all iterations
    (cosine, m = ``min_lr_ratio``). With ``scale_with_epochs`` milestones given for the recipe's epoch count are
    rescaled to ``epochs``. The only state is the step counter (kept by the trainer).
    """

    def __init__(self, cfg: dict, epochs: int, iters_per_epoch: int, recipe_epochs: int | None = None):
        self.type = cfg.get("type", "multistep")
        if self.type not in ("multistep", "cosine"):
            raise UsageError(f"sched.type must be multistep or cosine, got {self.type!r}")
        self.gamma = float(cfg.get("gamma", 0.1))
        self.min_ratio = float(cfg.get("min_lr_ratio", 0.0))
        self.warmup_iters = int(cfg.get("warmup_iters", 0))
        self.warmup_ratio = float(cfg.get("warmup_ratio", 0.001))
        self.epochs, self.ipe = int(epochs), max(1, int(iters_per_epoch))
        ms = [float(m) for m in cfg.get("milestones", [])]
        if cfg.get("scale_with_epochs", False) and recipe_epochs and recipe_epochs != epochs:
            ms = [m * epochs / recipe_epochs for m in ms]
        self.milestones = [int(round(m)) for m in ms]

    def factor(self, step: int) -> float:
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
    integer buffers copied."""

    def __init__(self, model: torch.nn.Module, momentum: float = 2e-4, gamma: float = 2000.0):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.momentum, self.gamma, self.updates = float(momentum), float(gamma), 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
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
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


# ------------------------------------------------------------------------------------------------- RNG state
def get_rng_state() -> dict:
    """Torch, CUDA, numpy and Python RNG states as tensors/lists/numbers (``weights_only``-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, pystate, pygauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": [int(v) for v in pystate], "gauss": pygauss},
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then ``os.replace`` (a kill never leaves half a
    file; :func:`kanpose_cli.core.io.atomic_path`)."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


# ------------------------------------------------------------------------------------------------- distributed
class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (order = f(seed, epoch), shard ``rank::world``) that can skip the first ``skip`` samples
    of this rank's shard, to resume mid-epoch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def dist_info() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` when not distributed)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """Start the process group under torchrun (NCCL for CUDA, gloo for CPU); returns ``(rank, world, device)``.

    Raises:
        DeviceError: CUDA asked for but unavailable or fewer GPUs than local ranks.
    """
    from kanpose_cli.core.device import select_device

    rank, world, local = dist_info()
    dev = select_device(device)
    if world > 1:
        if dev.type == "cuda":
            if local >= torch.cuda.device_count():
                raise DeviceError(f"local rank {local} but only {torch.cuda.device_count()} CUDA device(s)")
            dev = torch.device("cuda", local)
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, dev


# ------------------------------------------------------------------------------------------------- run folders
def find_resume_state(resume: str, runs_dir: str | Path = "runs/train") -> Path:
    """``auto`` (the newest ``runs/train/*/state/last.pt``), a run folder, or a state file.

    Raises:
        InputError: nothing to resume.
    """
    if resume == "auto":
        cands = sorted(Path(runs_dir).glob("*/state/last.pt"), key=lambda p: p.stat().st_mtime)
        if not cands:
            raise InputError(f"--resume auto: no run with a checkpoint under {runs_dir}")
        return cands[-1]
    p = Path(resume).expanduser()
    if p.is_dir():
        p = p / "state" / "last.pt"
    if not p.is_file():
        raise InputError(f"--resume {resume}: no training checkpoint found ({p} does not exist)")
    return p


def load_state(path: str | Path) -> dict:
    """Load a training state (``weights_only=True``); raises InputError if unreadable or not ours."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise InputError(f"cannot read training checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise InputError(f"{path} is not a kanpose training checkpoint")
    return state


# ------------------------------------------------------------------------------------------------- trainer
class Callback:
    """Hooks called by :class:`Trainer` (override what you need). ``info`` dicts hold plain numbers."""

    def on_train_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, trainer: "Trainer", epoch: int, num_batches: int) -> None: ...
    def on_step_end(self, trainer: "Trainer", info: dict) -> None: ...
    def on_validation_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", row: dict) -> None: ...
    def on_train_end(self, trainer: "Trainer", summary: dict) -> None: ...


class Trainer:
    """Train a registered pose model on COCO-format keypoint data.

    Args:
        cfg: effective config (see the module docstring).
        run_dir: run folder (rank 0 writes into it); required. A lazy :class:`~kanpose_cli.core.io.RunDir` is
            created when training starts (:meth:`fit`), so a run that fails to set up leaves no folder.
        callbacks: :class:`Callback` objects (progress display, tests).
        state: a training state from :func:`load_state` to resume from (its config is used).

    Raises:
        InputError: missing/empty data. UsageError: bad config values. DeviceError: device/AMP not available.
    """

    def __init__(self, cfg: dict, run_dir: str | Path | RunDir, callbacks: list[Callback] | None = None,
                 state: dict | None = None):
        self.cfg = copy.deepcopy(state["config"] if state is not None else cfg)
        cfg = self.cfg
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else Path(run_dir)  # a RunDir becomes a Path in fit
        self.callbacks = list(callbacks or [])
        self.rank, self.world, self.device = init_distributed(cfg.get("device", "cpu"))
        self.is_main = self.rank == 0
        seed_everything(int(cfg["seed"]) + self.rank)
        # data
        train = cfg["data"].get("train") or []
        if not train:
            raise InputError("no training data: give --train-ann and --train-images")
        self.model: PoseModel = create_model(cfg["model"], overrides=cfg.get("model_overrides") or None)
        self.init_report = None  # InitReport of ``init`` (None when resuming: the state holds the weights)
        if cfg.get("init") and state is None:
            self._load_init(cfg["init"])
        instances = []
        for src in train:
            instances += load_coco_instances(src["ann"], src["images"], self.model.keypoints.num_keypoints)
        instances = instances * max(1, int(cfg["data"].get("repeat", 1)))  # data.repeat: passes per epoch
        aug = AugmentConfig.from_dict(cfg["aug"]) if cfg.get("aug") else None
        self.dataset = TopDownDataset(instances, self.model, aug, seed=int(cfg["seed"]))
        bs = int(cfg["batch"])
        self.sampler = ResumableSampler(self.dataset, num_replicas=self.world, rank=self.rank, shuffle=True,
                                        seed=int(cfg["seed"]), drop_last=False)
        self.drop_last = self.sampler.num_samples > bs
        self.batch_size = bs
        self.iters_per_epoch = (self.sampler.num_samples // bs if self.drop_last
                                else math.ceil(self.sampler.num_samples / bs))
        # model, loss, optimiser
        amp = str(cfg.get("amp") or "none").lower()
        if amp not in ("none", "bf16", "fp16"):
            raise UsageError(f"amp must be none, bf16 or fp16, got {amp!r}")
        if amp != "none" and self.device.type != "cuda":
            raise DeviceError(f"--amp {amp} needs a CUDA device (mixed precision is CUDA-only here); use --amp none")
        self.amp = amp
        self.channels_last = bool(cfg.get("channels_last"))
        self.model.to(self.device).train()
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if self.world > 1:
            if cfg.get("sync_bn"):
                if self.device.type != "cuda":
                    raise DeviceError("--sync-bn needs CUDA devices (torch's SyncBatchNorm has no CPU kernel); drop it")
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.loss_fn = build_loss(getattr(self.model, "loss_config", None) or self.model.spec.loss)
        o = cfg["optim"]
        groups = param_groups(self.model, float(o["weight_decay"]), o.get("layer_decay"),
                              tuple(o.get("no_decay_keys", ("pos_embed", "cls_token"))),
                              tuple(o.get("group0_keys", ("patch_embed", "pos_embed", "cls_token"))))
        self.base_lr = float(o["lr"])
        self.optimizer = torch.optim.AdamW(groups, lr=self.base_lr, betas=tuple(o.get("betas", (0.9, 0.999))))
        recipe_epochs = load_recipe(cfg["recipe"]).get("epochs") if cfg.get("recipe") else None
        self.epochs = int(cfg["epochs"])
        self.schedule = LrSchedule(cfg["sched"], self.epochs, self.iters_per_epoch, recipe_epochs)
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        e = cfg.get("ema") or {}
        self.ema = ModelEMA(self.model, e.get("momentum", 2e-4), e.get("gamma", 2000)) if e.get("enabled") else None
        # progress counters
        self.epoch, self.step, self.iter_in_epoch = 0, 0, 0
        self.best_ap, self.best_epoch = -1.0, -1
        self.history: list[dict] = []
        self.wall_s = 0.0
        self._epoch_loss = (0.0, 0)
        self._warned_no_eval = False
        if state is not None:
            self._restore(state)

    # -------------------------------------------------------------------------------------------- state
    def _load_init(self, weights: str) -> None:
        """``init``: load the parts of the model that ``weights`` has (a checkpoint, ``hub`` or ``hf://``; see
        :func:`kanpose_cli.core.weights.init_weights`) and keep the report in :attr:`init_report`."""
        from kanpose_cli.core.weights import init_weights

        self.init_report = init_weights(self.model, str(weights))

    def state_dict(self) -> dict:
        """The full training state (see the module docstring)."""
        return {
            "format": STATE_FORMAT, "config": self.cfg, "epoch": self.epoch, "step": self.step,
            "iter_in_epoch": self.iter_in_epoch, "epoch_loss": list(self._epoch_loss),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.step, "type": self.schedule.type},
            "ema": self.ema.state_dict() if self.ema else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": get_rng_state(), "best_ap": self.best_ap, "best_epoch": self.best_epoch,
            "history": self.history, "wall_s": self.wall_s, "world_size": self.world,
        }

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.iter_in_epoch = int(state.get("iter_in_epoch", 0))
        self._epoch_loss = tuple(state.get("epoch_loss", (0.0, 0)))
        self.best_ap, self.best_epoch = float(state["best_ap"]), int(state["best_epoch"])
        self.history = list(state.get("history", []))
        self.wall_s = float(state.get("wall_s", 0.0))
        if int(state.get("world_size", 1)) == self.world:
            set_rng_state(state["rng"])

    def save_state(self) -> Path | None:
        """Write ``state/last.pt`` atomically (rank 0 only)."""
        if not self.is_main:
            return None
        path = self.run_dir / "state" / "last.pt"
        atomic_torch_save(self.state_dict(), path)
        return path

    # -------------------------------------------------------------------------------------------- loop
    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _set_lr(self) -> float:
        f = self.schedule.factor(self.step)
        for g in self.optimizer.param_groups:
            g["lr"] = self.base_lr * f * g.get("lr_scale", 1.0)
        return self.base_lr * f

    def _loader(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        self.sampler.skip = self.iter_in_epoch * self.batch_size
        self.dataset.set_epoch(epoch)
        workers = int(self.cfg.get("workers", 0))
        return DataLoader(self.dataset, batch_size=self.batch_size, sampler=self.sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", drop_last=self.drop_last, collate_fn=collate,
                          persistent_workers=False, prefetch_factor=2 if workers > 0 else None)

    def train_step(self, batch: dict) -> float:
        """One optimisation step on a collated batch; returns the loss value."""
        dev = self.device
        nb = dev.type == "cuda"
        images = batch.pop("image").to(dev, non_blocking=nb)
        targets = {k: v.to(dev, non_blocking=nb) for k, v in batch.items()
                   if k not in ("index", "center", "roi", "rotation")}
        # normalize() permutes (B, H, W, 3) -> (B, 3, H, W): make the memory layout explicit (a channels-last view
        # reaching the depthwise convs is several times slower on CPU)
        x = self.model.normalize(images).contiguous(
            memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        lr = self._set_lr()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            out = self.net(x)
            loss = self.loss_fn(out, targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {self.step}; lower --lr or check data")
        clip = self.cfg.get("clip_grad")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(clip))
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(clip))
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self._last_lr = lr
        return float(loss.detach())

    def eval_model(self) -> PoseModel:
        """The model used for validation and export (the EMA copy when EMA is on)."""
        return self.ema.module if self.ema is not None else self.model

    def validate(self) -> dict | None:
        """COCO keypoint AP on the validation set with GT boxes (rank 0), via ``engine.evaluator.evaluate_model``."""
        val = self.cfg["data"].get("val")
        if not val or not self.is_main:
            return None
        try:
            from kanpose_cli.core.engine.evaluator import evaluate_model
        except ImportError:
            return None
        model = self.eval_model()
        was_training = model.training
        model.eval()
        try:
            v = self.cfg.get("val") or {}
            metrics = evaluate_model(model, val["ann"], val["images"], boxes="gt", flip=bool(v.get("flip", True)),
                                     device=str(self.device), batch_size=int(v.get("batch", 32)))
        finally:
            model.train(was_training)
        return {k: float(m) for k, m in metrics.items() if isinstance(m, (int, float))}

    def fit(self) -> dict:
        """Train until ``epochs``; returns a summary dict (epochs, step, best AP/epoch, wall time, paths)."""
        self._call("on_train_start")
        if self.is_main:
            self.run_dir = Path(self.run_dir)  # creates a lazy RunDir: the first output is written now
            write_text_atomic(self.run_dir / "config.json", json.dumps(self.cfg, indent=1))
        every = int((self.cfg.get("val") or {}).get("every", 1) or 1)
        t_start = time.time() - self.wall_s
        while self.epoch < self.epochs:
            epoch = self.epoch
            loader = self._loader(epoch)
            self.model.train()
            self._call("on_epoch_start", epoch, len(loader))
            t0, seen = time.time(), 0
            loss_sum, loss_n = self._epoch_loss
            for batch in loader:
                n = int(batch["image"].shape[0])
                loss = self.train_step(batch)
                loss_sum, loss_n = loss_sum + loss, loss_n + 1
                self._epoch_loss = (loss_sum, loss_n)
                self.iter_in_epoch += 1
                seen += n * self.world
                self.wall_s = time.time() - t_start
                info = {"epoch": epoch, "iter": self.iter_in_epoch, "iters": self.iters_per_epoch, "step": self.step,
                        "loss": loss, "mean_loss": loss_sum / loss_n, "lr": self._last_lr,
                        "img_per_s": seen / max(1e-9, time.time() - t0)}
                se = int(self.cfg.get("save_every_steps") or 0)
                if se and self.step % se == 0 and self.iter_in_epoch < self.iters_per_epoch:
                    self.save_state()
                self._call("on_step_end", info)
            self.epoch, self.iter_in_epoch = epoch + 1, 0
            self._epoch_loss = (0.0, 0)
            row = {"epoch": epoch + 1, "step": self.step, "train_loss": loss_sum / max(1, loss_n),
                   "lr": getattr(self, "_last_lr", self.base_lr), "img_per_s": seen / max(1e-9, time.time() - t0)}
            metrics = None
            if (epoch + 1) % every == 0 or epoch + 1 == self.epochs:
                self._call("on_validation_start")
                metrics = self.validate()
            if metrics:
                row.update(metrics)
            self.wall_s = time.time() - t_start
            row["time_s"] = round(self.wall_s, 1)
            self.history.append(row)
            if self.is_main:
                self._export(metrics)
                self._write_logs()
                self.save_state()
            if self.world > 1:
                dist.barrier()
            self._call("on_epoch_end", row)
        summary = {"epochs": self.epoch, "step": self.step, "best_ap": self.best_ap, "best_epoch": self.best_epoch,
                   "wall_s": self.wall_s, "run_dir": str(self.run_dir),
                   "last": str(self.run_dir / "weights" / "last.safetensors"),
                   "best": str(self.run_dir / "weights" / "best.safetensors") if self.best_epoch > 0 else None,
                   "final": self.history[-1] if self.history else {}}
        self._call("on_train_end", summary)
        return summary

    # -------------------------------------------------------------------------------------------- outputs
    def provenance(self, metrics: dict | None) -> dict:
        return {
            "trained_with": "kanpose train", "data": self.cfg["data"], "epochs_trained": self.epoch,
            "epochs_planned": self.epochs, "steps": self.step, "batch_per_process": self.batch_size,
            "world_size": self.world, "device": str(self.device), "wall_time_s": round(self.wall_s, 1),
            "val_metrics_gt_boxes": metrics, "ema": self.ema is not None, "torch": torch.__version__,
            "config": {k: v for k, v in self.cfg.items() if k != "data"},
            "init": ({k: v for k, v in self.init_report.to_dict().items() if k != "rows"}
                     if self.init_report is not None else self.cfg.get("init")),
        }

    def _export(self, metrics: dict | None) -> None:
        from kanpose_cli.core.weights import save_checkpoint

        model = self.eval_model()
        wdir = self.run_dir / "weights"
        save_checkpoint(model, wdir / "last.safetensors", self.provenance(metrics))
        ap = (metrics or {}).get("AP")
        if ap is not None and ap > self.best_ap:
            self.best_ap, self.best_epoch = float(ap), self.epoch
            save_checkpoint(model, wdir / "best.safetensors", self.provenance(metrics))

    def _write_logs(self) -> None:
        keys: list[str] = []
        for r in self.history:
            keys += [k for k in r if k not in keys]
        with atomic_path(self.run_dir / "results.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in self.history:
                w.writerow(r)
        try:
            plot_results(self.history, self.run_dir / "results.png")
        except Exception:  # noqa: BLE001 - a plot must never stop training
            pass


def plot_results(history: list[dict], path: Path) -> None:
    """PNG with the training loss and the validation AP/AP50 per epoch (matplotlib, Agg backend)."""
    keep_third_party_files_in_cache()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    ep = [r["epoch"] for r in history]
    a1.plot(ep, [r["train_loss"] for r in history], marker=".")
    a1.set_xlabel("epoch")
    a1.set_ylabel("train loss")
    a1.set_title("loss")
    for key in ("AP", "AP50"):
        pts = [(r["epoch"], r[key]) for r in history if key in r]
        if pts:
            a2.plot(*zip(*pts), marker="o", label=key)
    a2.set_xlabel("epoch")
    a2.set_ylabel("COCO keypoint AP (val, GT boxes)")
    a2.set_title("validation")
    if a2.lines:
        a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def export_state(state_path: str | Path, out_path: str | Path, half: bool = False, extra: dict | None = None,
                 use_ema: bool = True) -> Path:
    """Turn a training state (``state/last.pt``, also a mid-epoch one) into a pose checkpoint (safetensors).

    Args:
        state_path: file written by :meth:`Trainer.save_state`. out_path: ``.safetensors`` to write.
        half: store fp16 tensors. extra: provenance entries added to the trainer's. use_ema: export the EMA weights
            when the run has them.

    Returns:
        ``out_path``.
    """
    from kanpose_cli.core.weights import save_checkpoint

    state = load_state(state_path)
    cfg = state["config"]
    model = create_model(cfg["model"], overrides=cfg.get("model_overrides") or None)
    ema = state.get("ema") if use_ema else None
    model.load_state_dict(ema["module"] if ema else state["model"])
    last = state["history"][-1] if state.get("history") else {}
    prov = {
        "trained_with": "kanpose train", "data": cfg["data"], "epochs_planned": cfg["epochs"],
        "epochs_completed": state["epoch"], "iterations_into_next_epoch": state.get("iter_in_epoch", 0),
        "steps": state["step"], "batch_per_process": cfg["batch"], "world_size": state.get("world_size", 1),
        "device": cfg.get("device", "cpu"), "wall_time_s": round(float(state.get("wall_s", 0.0)), 1),
        "last_val_metrics_gt_boxes": {k: v for k, v in last.items() if k.startswith("A")} or None,
        "ema": bool(ema), "torch": torch.__version__, "config": {k: v for k, v in cfg.items() if k != "data"},
    }
    prov.update(extra or {})
    return save_checkpoint(model, out_path, prov, half=half)
