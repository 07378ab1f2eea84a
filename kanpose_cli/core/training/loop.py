"""The training loop: :class:`Trainer` (setup, steps, validation, state, best/last export) and its :class:`Callback`.

Reference: the mmpose 0.x/1.x training loop (spec §2.7, §3.7, §7.2, §8.7). The run folder and the resume
guarantees are described in :mod:`kanpose_cli.core.training`.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from kanpose_cli.core.data.dataset import TopDownDataset, collate
from kanpose_cli.core.data.training_sets import default_keypoint_set, load_sources
from kanpose_cli.core.training.config import TrainConfig, lineage_seeds
from kanpose_cli.core.training.optim import LrSchedule, ModelEMA, param_groups
from kanpose_cli.core.training.outputs import TensorBoardLog, plot_results, tensorboard_available, write_results_csv
from kanpose_cli.core.training.sampler import RatioSampler
from kanpose_cli.core.training.state import (
    STATE_FORMAT,
    atomic_torch_save,
    get_rng_state,
    seed_everything,
    set_rng_state,
)
from kanpose_cli.core.errors import DeviceError, InputError, UsageError
from kanpose_cli.core.io import RunDir, write_text_atomic
from kanpose_cli.core.keypoints import KeypointSet
from kanpose_cli.core.models.losses import build_loss
from kanpose_cli.core.models.registry import PoseModel, create_model
from kanpose_cli.core.parallel import init_distributed


class Callback:
    """Hooks called by :class:`Trainer` (override what you need). ``info`` and ``row`` dicts hold plain numbers:
    ``info`` = epoch, iter, iters, step, loss, mean_loss, lr, img_per_s; ``row`` = one ``results.csv`` row."""

    def on_train_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, trainer: "Trainer", epoch: int, num_batches: int) -> None: ...
    def on_step_end(self, trainer: "Trainer", info: dict) -> None: ...
    def on_validation_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", row: dict) -> None: ...
    def on_train_end(self, trainer: "Trainer", summary: dict) -> None: ...


class Trainer:
    """Train a registered pose model on one or more keypoint training sets.

    Args:
        cfg: the effective config (:class:`~kanpose_cli.core.training.config.TrainConfig`, or its dict).
        run_dir: run folder (rank 0 writes into it); required. A lazy :class:`~kanpose_cli.core.io.RunDir` is
            created when training starts (:meth:`fit`), so a run that fails to set up leaves no folder.
        callbacks: :class:`Callback` objects (progress display, tests).
        state: a training state from :func:`~kanpose_cli.core.training.state.load_state` to resume from (its
            config is used; ``cfg`` is ignored).

    Attributes:
        num_persons: persons in the training sets. epoch_size: persons drawn per epoch (all ranks).
        iters_per_epoch: optimiser steps per epoch. epoch, step, iter_in_epoch: progress counters.

    Raises:
        InputError: missing/empty data. UsageError: bad config values. DeviceError: device/AMP not available.
    """

    def __init__(self, cfg: TrainConfig | dict | None, run_dir: str | Path | RunDir,
                 callbacks: list[Callback] | None = None, state: dict | None = None):
        src = state["config"] if state is not None else cfg
        self.cfg = copy.deepcopy(src) if isinstance(src, TrainConfig) else TrainConfig.from_dict(src)
        cfg = self.cfg
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else Path(run_dir)  # a RunDir becomes a Path in fit
        self.callbacks = list(callbacks or [])
        self.rank, self.world, self.device = init_distributed(cfg.device)
        self.is_main = self.rank == 0
        # the seeds of the weights this run starts from, so that runs continuing from this one's checkpoints skip them
        self.seeds_before = lineage_seeds(cfg.init)
        if cfg.seed is None:  # resolved once; config.json, the state and the checkpoints record the number
            cfg.seed = (max(self.seeds_before) + 1 if self.seeds_before else 0) if state is None else 0  # default_seed
        seed_everything(cfg.seed + self.rank)
        if not cfg.data.train:
            raise InputError("no training data: give --train-ann and --train-images")
        # the model's keypoint set: the config's (recorded at the first build, so --resume rebuilds the same model),
        # else the first source's own (COCO categories[0], the YOLO data.yaml); its size K sets the head
        self.model: PoseModel = create_model(cfg.model, overrides=cfg.model_overrides or None,
                                             keypoints=self._keypoint_set(cfg))
        cfg.keypoints = self.model.keypoints.to_dict()
        self.init_report = None  # InitReport of ``init`` (None when resuming: the state holds the weights)
        if cfg.init and state is None:
            self._load_init(cfg.init)
        # data: every source on the model's keypoint set; the sampler draws each source's ratio per epoch
        instances, sizes = load_sources(cfg.data.train, self.model.keypoints, positional=bool(cfg.data.keypoint_set))
        self.sampler = RatioSampler(sizes, [s.ratio for s in cfg.data.train], seed=cfg.seed, rank=self.rank,
                                    world=self.world)
        self.num_persons, self.epoch_size = len(instances), self.sampler.epoch_size
        # a YOLO-pose validation split is read now (its errors before any training), written on the first validation
        self._yolo_val_coco, self._yolo_val_file = None, None
        if cfg.data.val is not None and cfg.data.val.format == "yolo" and self.is_main:
            self._yolo_val_coco = self._read_yolo_val(cfg.data.val)
        self.dataset = TopDownDataset(instances * self.sampler.copies, self.model, cfg.aug, seed=cfg.seed)
        bs = cfg.batch
        self.batch_size = bs
        self.drop_last = self.sampler.num_samples > bs
        self.iters_per_epoch = (self.sampler.num_samples // bs if self.drop_last
                                else math.ceil(self.sampler.num_samples / bs))
        # model, loss, optimiser
        if cfg.amp != "none" and self.device.type != "cuda":
            raise DeviceError(f"--amp {cfg.amp} needs a CUDA device (mixed precision is CUDA-only here); "
                              f"use --amp none")
        self.amp = cfg.amp
        self.channels_last = cfg.channels_last
        self.model.to(self.device).train()
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if self.world > 1:
            if cfg.sync_bn:
                if self.device.type != "cuda":
                    raise DeviceError("--sync-bn needs CUDA devices (torch's SyncBatchNorm has no CPU kernel); drop it")
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.loss_fn = build_loss(getattr(self.model, "loss_config", None) or self.model.spec.loss)
        o = cfg.optim
        groups = param_groups(self.model, o.weight_decay, o.layer_decay, o.no_decay_keys, o.group0_keys)
        self.base_lr = o.lr
        self.optimizer = torch.optim.AdamW(groups, lr=self.base_lr, betas=o.betas)
        self.epochs = cfg.epochs
        self.schedule = LrSchedule(cfg.sched, self.epochs, self.iters_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
        self.ema = ModelEMA(self.model, cfg.ema.momentum, cfg.ema.gamma) if cfg.ema.enabled else None
        # progress counters
        self.epoch, self.step, self.iter_in_epoch = 0, 0, 0
        self.best_ap, self.best_epoch = -1.0, -1
        self.history: list[dict] = []
        self.wall_s = 0.0
        self._epoch_loss = (0.0, 0)
        self._last_lr = self.base_lr
        self.tensorboard: TensorBoardLog | None = None  # opened in fit() on rank 0 when tensorboard is installed
        if state is not None:
            self._restore(state)

    @staticmethod
    def _keypoint_set(cfg: TrainConfig) -> KeypointSet | None:
        """``cfg.keypoints`` as a set, else :func:`default_keypoint_set` of the training sources (None: the model's
        default). Raises UsageError for a malformed ``keypoints`` section."""
        if cfg.keypoints is not None:
            try:
                return KeypointSet.from_dict(cfg.keypoints, where="config key keypoints")
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        return default_keypoint_set(cfg.data.train)

    # -------------------------------------------------------------------------------------------- state
    def _load_init(self, weights: str) -> None:
        """``init``: load the parts of the model that ``weights`` has (a checkpoint, ``hub`` or ``hf://``; see
        :func:`kanpose_cli.core.weights.init_weights`) and keep the report in :attr:`init_report`."""
        from kanpose_cli.core.weights import init_weights

        self.init_report = init_weights(self.model, str(weights))

    def state_dict(self) -> dict:
        """The full training state: format, config (:meth:`TrainConfig.to_dict`), counters, model, optimiser,
        scheduler step, EMA, grad scaler, RNG states, best AP/epoch, history, wall time, world size."""
        return {
            "format": STATE_FORMAT, "config": self.cfg.to_dict(), "epoch": self.epoch, "step": self.step,
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
        """Write ``state/last.pt`` atomically (rank 0 only; None on the other ranks)."""
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
        workers = self.cfg.workers
        return DataLoader(self.dataset, batch_size=self.batch_size, sampler=self.sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", drop_last=self.drop_last, collate_fn=collate,
                          persistent_workers=False, prefetch_factor=2 if workers > 0 else None)

    def train_step(self, batch: dict) -> float:
        """One optimisation step on a collated batch (``image`` (B, H, W, 3) uint8 + the codec's targets);
        returns the loss value.

        Raises:
            FloatingPointError: a non-finite loss.
        """
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
        clip = self.cfg.clip_grad
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

    def train_mode(self) -> None:
        """The model in training mode; with ``freeze_bn_stats`` its BatchNorm layers stay in eval mode (running
        statistics used and kept as loaded, affine weights still trained)."""
        self.model.train()
        if self.cfg.freeze_bn_stats:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def eval_model(self) -> PoseModel:
        """The model used for validation and export (the EMA copy when EMA is on)."""
        return self.ema.module if self.ema is not None else self.model

    def validate(self) -> dict | None:
        """COCO keypoint AP on ``data.val`` with GT boxes (rank 0; None elsewhere or without a validation set), via
        :func:`kanpose_cli.core.evaluation.evaluator.evaluate_model`."""
        val = self.cfg.data.val
        if val is None or not self.is_main:
            return None
        try:
            from kanpose_cli.core.evaluation.evaluator import evaluate_model
        except ImportError:
            return None
        ann, images = val.ann, val.images
        if val.format == "yolo":
            ann, images = self._yolo_val_annotations(val)
        model = self.eval_model()
        was_training = model.training
        model.eval()
        try:
            metrics = evaluate_model(model, ann, images, boxes="gt", flip=self.cfg.val.flip,
                                     device=str(self.device), batch_size=self.cfg.val.batch)
        finally:
            model.train(was_training)
        return {k: float(m) for k, m in metrics.items() if isinstance(m, (int, float))}

    def _yolo_val_annotations(self, val) -> tuple[Path, str]:
        """A YOLO-pose validation split as COCO annotations, written once per run to ``<run>/val_annotations.json``
        (:func:`~kanpose_cli.core.data.yolo_pose.yolo_to_coco`); returns ``(that file, the images folder)``."""
        if self._yolo_val_file is None:
            from kanpose_cli.core.io import write_json_atomic

            coco, root = self._yolo_val_coco or self._read_yolo_val(val)
            self._yolo_val_file = (write_json_atomic(Path(self.run_dir) / "val_annotations.json", coco, indent=None),
                                   str(root))
        return self._yolo_val_file

    @staticmethod
    def _read_yolo_val(val) -> tuple[dict, Path]:
        from kanpose_cli.core.data.yolo_pose import yolo_to_coco

        return yolo_to_coco(val.ann, val.split or "val")

    def fit(self) -> dict:
        """Train until ``epochs``; returns a summary dict (epochs, step, best_ap, best_epoch, wall_s, run_dir,
        last, best, final)."""
        self._call("on_train_start")
        if self.is_main:
            self.run_dir = Path(self.run_dir)  # creates a lazy RunDir: the first output is written now
            write_text_atomic(self.run_dir / "config.json", json.dumps(self.cfg.to_dict(), indent=1))
            if tensorboard_available():
                self.tensorboard = TensorBoardLog(self.run_dir)
        every = max(1, self.cfg.val.every)
        save_every = self.cfg.save_every_steps
        t_start = time.time() - self.wall_s
        while self.epoch < self.epochs:
            epoch = self.epoch
            loader = self._loader(epoch)
            self.train_mode()
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
                if self.tensorboard is not None:
                    self.tensorboard.step(self.step, loss, self._last_lr)
                if save_every and self.step % save_every == 0 and self.iter_in_epoch < self.iters_per_epoch:
                    self.save_state()
                self._call("on_step_end", info)
            self.epoch, self.iter_in_epoch = epoch + 1, 0
            self._epoch_loss = (0.0, 0)
            row = {"epoch": epoch + 1, "step": self.step, "train_loss": loss_sum / max(1, loss_n),
                   "lr": self._last_lr, "img_per_s": seen / max(1e-9, time.time() - t0)}
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
                if self.tensorboard is not None:
                    self.tensorboard.epoch(row)
                self.save_state()
            if self.world > 1:
                dist.barrier()
            self._call("on_epoch_end", row)
        summary = {"epochs": self.epoch, "step": self.step, "best_ap": self.best_ap, "best_epoch": self.best_epoch,
                   "wall_s": self.wall_s, "run_dir": str(self.run_dir),
                   "last": str(self.run_dir / "weights" / "last.safetensors"),
                   "best": str(self.run_dir / "weights" / "best.safetensors") if self.best_epoch > 0 else None,
                   "final": self.history[-1] if self.history else {}}
        if self.tensorboard is not None:
            self.tensorboard.close()
        self._call("on_train_end", summary)
        return summary

    # -------------------------------------------------------------------------------------------- outputs
    def provenance(self, metrics: dict | None) -> dict:
        """What the exported checkpoints record about their training (data, progress, config, ``--init`` and the
        seeds of its lineage, ``seeds_before``: see :func:`lineage_seeds`)."""
        cfg = self.cfg.to_dict()
        return {
            "trained_with": "kanpose train", "data": cfg.pop("data"), "epochs_trained": self.epoch,
            "epochs_planned": self.epochs, "steps": self.step, "batch_per_process": self.batch_size,
            "world_size": self.world, "device": str(self.device), "wall_time_s": round(self.wall_s, 1),
            "val_metrics_gt_boxes": metrics, "ema": self.ema is not None, "torch": torch.__version__,
            "config": cfg, "seeds_before": self.seeds_before,
            "init": ({k: v for k, v in self.init_report.to_dict().items() if k != "rows"}
                     if self.init_report is not None else self.cfg.init),
        }

    def _export(self, metrics: dict | None) -> None:
        """``weights/last.safetensors`` every epoch, ``weights/best.safetensors`` when the AP improves."""
        from kanpose_cli.core.weights import save_checkpoint

        model = self.eval_model()
        wdir = self.run_dir / "weights"
        save_checkpoint(model, wdir / "last.safetensors", self.provenance(metrics))
        ap = (metrics or {}).get("AP")
        if ap is not None and ap > self.best_ap:
            self.best_ap, self.best_epoch = float(ap), self.epoch
            save_checkpoint(model, wdir / "best.safetensors", self.provenance(metrics))

    def _write_logs(self) -> None:
        write_results_csv(self.history, self.run_dir / "results.csv")
        try:
            plot_results(self.history, self.run_dir / "results.png")
        except Exception:  # noqa: BLE001 - a plot must never stop training
            pass
