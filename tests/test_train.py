"""Training: data/targets/loss/decode agree (overfit 8 real persons), kill + resume loses nothing, 2-process DDP,
config overrides and CLI errors, augmentation geometry, pseudo-label format. Config, recipes and ratio sampling:
test_train_config.py."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.data.augment import AugmentConfig, augment_instance, flip_instance
from kanpose_cli.core.data.coco import load_coco_instances, subset_annotations
from kanpose_cli.core.data.dataset import TopDownDataset, collate
from kanpose_cli.core.data.training_sets import DataSource
from kanpose_cli.core import training as T
from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.keypoints import COCO17
from kanpose_cli.core.models.registry import create_model

REPO = Path(__file__).resolve().parents[1]
SMALL = {"input_size": [128, 96], "maxpool": True, "stem_channels": [16, 16, 64]}  # ~3x cheaper than r18 at 128x96


@pytest.fixture(scope="module")
def sub8(coco_mini, tmp_path_factory) -> tuple[Path, Path]:
    """A COCO keypoint file with 8 real persons (5 whole train2017 images) and its images folder."""
    out = tmp_path_factory.mktemp("sub8") / "person_keypoints_sub8.json"
    subset_annotations(coco_mini / "annotations" / "person_keypoints_train2017.json", out, 8)
    return out, coco_mini / "train2017"


def small_cfg(ann: Path, images: Path, ratio: float = 1.0, **kw) -> T.TrainConfig:
    cfg = T.TrainConfig.from_recipe("amfacpose-r18-256x192")
    cfg.model_overrides = dict(SMALL)
    cfg.data = T.DataConfig(train=[DataSource(str(ann), str(images), ratio=ratio)])
    cfg.workers, cfg.aug, cfg.epochs, cfg.batch, cfg.seed = 0, None, 2, 4, 0
    cfg.sched.warmup_iters = 3
    cfg.val.every = 1000
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


# ------------------------------------------------------------------------------------------------- data
def test_dataset_targets_decode_back_to_keypoints(sub8):
    ann, images = sub8
    model = create_model("amfacpose-r18-256x192")
    inst = load_coco_instances(ann, images)
    assert len(inst) == 8
    ds = TopDownDataset(inst, model, AugmentConfig(), seed=3)
    batch = collate([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 256, 192, 3) and batch["image"].dtype == torch.uint8
    assert set(batch) >= {"target_x", "target_y", "target_weight"}
    # Logits that put all mass on the labels decode to the labelled keypoints (crop pixels, ≤ 0.5 px).
    tx, ty, w = batch["target_x"], batch["target_y"], batch["target_weight"]
    kpts, _ = model.codec.decode((torch.log(tx + 1e-9) / model.codec.beta, torch.log(ty + 1e-9) / model.codec.beta))
    for i in range(4):
        sample = ds[i]
        W, H = 192, 256
        # recompute the expected crop keypoints from the sample's own ROI and rotation
        from kanpose_cli.core.data.transforms import get_warp_matrix, transform_points
        kp = inst[i].keypoints[:, :2].copy()
        rng = np.random.default_rng([3, 0, i])
        aug = augment_instance(rng, AugmentConfig(), inst[i].width, kp, np.minimum(inst[i].keypoints[:, 2], 1),
                               sample["center"].numpy(), sample["roi"].numpy(), COCO17.flip_index, COCO17.upper_body,
                               W / H)
        m = get_warp_matrix(sample["center"].numpy(), sample["roi"].numpy(), (W, H),
                            float(sample["rotation"]), udp=True)
        expect = transform_points(aug["keypoints"], m)
        sel = w[i] > 0
        assert sel.sum() > 0
        assert np.abs(kpts[i][sel].numpy() - expect[sel.numpy()]).max() < 0.5


def test_flip_is_an_involution_and_swaps_sides():
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (17, 2))
    vis = (rng.uniform(size=17) > 0.3).astype(float)
    c = np.array([40.0, 50.0])
    k2, v2, c2 = flip_instance(640, kp, vis, c, COCO17.flip_index)
    assert np.allclose(k2[1, 0], 639 - kp[2, 0]) and v2[1] == vis[2] and c2[0] == 639 - 40
    k3, v3, c3 = flip_instance(640, k2, v2, c2, COCO17.flip_index)
    assert np.allclose(k3, kp) and np.allclose(v3, vis) and np.allclose(c3, c)


def test_augmentation_is_deterministic_per_seed_epoch_index(sub8):
    ann, images = sub8
    model = create_model("amfacpose-r18-256x192", overrides=SMALL)
    ds = TopDownDataset(load_coco_instances(ann, images), model, AugmentConfig(), seed=1)
    a, b = ds[2], ds[2]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["target_x"], b["target_x"])
    ds.set_epoch(1)
    c = ds[2]
    assert not (torch.equal(a["image"], c["image"]) and a["rotation"] == c["rotation"])


def test_loader_filters_crowd_and_unlabelled(coco_mini):
    inst = load_coco_instances(coco_mini / "annotations" / "person_keypoints_train2017.json", coco_mini / "train2017")
    assert len(inst) == 86  # README: 86 non-crowd persons with keypoints
    for i in inst:
        assert (i.keypoints[:, 2] > 0).any()
        assert 0 <= i.box[0] < i.box[2] <= i.width - 1 and 0 <= i.box[1] < i.box[3] <= i.height - 1


# ------------------------------------------------------------------------------------------------- optimisation
def test_param_groups_layer_decay_and_no_decay():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)
            self.norm = torch.nn.LayerNorm(4)

    class ViT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.patch_embed = torch.nn.Conv2d(3, 4, 2)
            self.pos_embed = torch.nn.Parameter(torch.zeros(1, 6, 4))
            self.blocks = torch.nn.ModuleList([Block() for _ in range(3)])
            self.head = torch.nn.Linear(4, 2)

    m = torch.nn.Module()
    m.backbone = ViT()
    groups = T.param_groups(m, 0.1, layer_decay=0.5)
    by_param = {id(p): g for g in groups for p in g["params"]}
    named = dict(m.named_parameters())

    def g(n):
        return by_param[id(named[n])]

    assert g("backbone.patch_embed.weight")["lr_scale"] == pytest.approx(0.5 ** 4)  # L = 3 blocks: rate^(L+1)
    assert g("backbone.blocks.0.fc.weight")["lr_scale"] == pytest.approx(0.5 ** 3)
    assert g("backbone.blocks.2.fc.weight")["lr_scale"] == pytest.approx(0.5 ** 1)
    assert g("backbone.head.weight")["lr_scale"] == 1.0
    assert g("backbone.blocks.1.fc.weight")["weight_decay"] == 0.1
    for n in ("backbone.blocks.1.fc.bias", "backbone.blocks.1.norm.weight", "backbone.pos_embed"):
        assert g(n)["weight_decay"] == 0.0


def test_lr_schedule_warmup_multistep_cosine():
    s = T.LrSchedule(T.SchedConfig(type="multistep", milestones=(90, 120), gamma=0.1, warmup_iters=10,
                                   warmup_ratio=0.001, scale_with_epochs=True, milestones_epochs=140),
                     epochs=14, iters_per_epoch=10)
    assert s.milestones == [9, 12]
    assert s.factor(0) == pytest.approx(0.001) and s.factor(10) == 1.0
    assert s.factor(95) == pytest.approx(0.1) and s.factor(125) == pytest.approx(0.01)
    c = T.LrSchedule(T.SchedConfig(type="cosine", min_lr_ratio=0.05, warmup_iters=0), epochs=10, iters_per_epoch=10)
    assert c.factor(0) == 1.0 and c.factor(100) == pytest.approx(0.05) and c.factor(50) == pytest.approx(0.525)


def test_warmup_scales_with_short_runs_and_keeps_long_ones():
    """A 2-epoch fine-tune reaches its base lr within 10 % of its steps; a full recipe run keeps its warmup."""
    for model in ("amfacpose-r18-128x96", "vitpose-s", "flatpose-b"):
        sched = T.TrainConfig.from_recipe(model).sched
        for ipe in (5, 37, 400):
            s = T.LrSchedule(sched, epochs=2, iters_per_epoch=ipe)
            n = 2 * ipe
            assert s.warmup_iters <= 0.1 * n
            assert s.warmup_iters < sched.warmup_iters  # the configured 500/1000 steps would outlast the run
            plain = T.LrSchedule(dataclasses.replace(sched, warmup_iters=0), epochs=2, iters_per_epoch=ipe)
            # after the warmup: exactly the schedule without warmup (multistep: the base lr itself)
            assert all(s.factor(i) == pytest.approx(plain.factor(i)) for i in range(s.warmup_iters, n))
            if sched.type == "multistep":
                assert s.factor(s.warmup_iters) == pytest.approx(1.0)
    # the shipped recipes' full runs: warmup unchanged (iterations per epoch of full COCO at their batch sizes)
    for model, ipe in (("amfacpose-r18-128x96", 149813 // 32), ("vitpose-s", 149813 // 64),
                       ("flatpose-b", 149813 // 64)):
        cfg = T.TrainConfig.from_recipe(model)
        s = T.LrSchedule(cfg.sched, epochs=cfg.epochs, iters_per_epoch=ipe)
        assert s.warmup_iters == cfg.sched.warmup_iters
        uncapped = T.LrSchedule(dataclasses.replace(cfg.sched, warmup_max_fraction=1.0), epochs=cfg.epochs,
                                iters_per_epoch=ipe)
        w = cfg.sched.warmup_iters
        assert [s.factor(i) for i in (0, w // 2, w - 1, w, 10 * w)] == [uncapped.factor(i) for i in (0, w // 2, w - 1,
                                                                                                   w, 10 * w)]
        assert s.factor(w // 2) < 0.6  # still warming up half-way
    # the cap is a config key: 1.0 lets the warmup fill the whole run
    whole = T.LrSchedule(T.SchedConfig(warmup_iters=500, warmup_max_fraction=1.0), epochs=2, iters_per_epoch=5)
    assert whole.warmup_iters == 10 and whole.factor(9) < 0.95
    with pytest.raises(UsageError, match="warmup_max_fraction"):
        T.SchedConfig(warmup_max_fraction=1.5)


def test_set_overrides_and_unknown_key_suggestion():
    cfg = T.TrainConfig.from_recipe("amfacpose-r18-256x192")
    out = T.apply_overrides(cfg, ["optim.lr=5e-4", "sched.type=cosine", "aug=null", "model_overrides.afpn_width=64"])
    assert out.optim.lr == 5e-4 and out.sched.type == "cosine" and out.aug is None
    assert out.model_overrides["afpn_width"] == 64 and cfg.optim.lr == 1e-3
    with pytest.raises(UsageError, match="did you mean optim.lr"):
        T.apply_overrides(cfg, ["optim.lrr=1"])


def test_recipes_exist_for_every_model():
    from kanpose_cli.core.models.registry import MODELS

    for name, _ in MODELS.items():
        cfg = T.TrainConfig.from_recipe(name)
        assert cfg.model == name and cfg.optim.lr > 0 and cfg.epochs > 0


# ------------------------------------------------------------------------------------------------- CLI errors
@pytest.mark.parametrize("args,code,text", [
    (["--train-ann", "nope.json", "--train-images", "."], 1, "annotation file not found"),
    (["--resume", "no/such/run"], 1, "no training checkpoint found"),
    (["--set", "optim.lrr=1", "--show-config"], 2, "did you mean optim.lr"),
    (["--model", "amfacpose-r18-256x19"], 2, "Did you mean"),
])
def test_train_cli_bad_input_is_one_line(args, code, text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["train", *args])
    assert res.exit_code == code, res.output
    assert text in res.output
    assert "Traceback" not in res.output


def test_train_cli_show_config_applies_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["train", "--epochs", "3", "--lr", "0.01", "--set", "sched.type=cosine",
                                   "--show-config"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.stdout)
    assert cfg["epochs"] == 3 and cfg["optim"]["lr"] == 0.01 and cfg["sched"]["type"] == "cosine"


# ------------------------------------------------------------------------------------------------- overfit
@pytest.mark.slow
def test_overfit_eight_real_persons_reaches_ap_08(sub8, tmp_path):
    """Proof that dataset, codec targets, loss, decode and evaluation agree: 8 real persons memorised, AP > 0.8."""
    from kanpose_cli.core.evaluation.evaluator import evaluate_model

    ann, images = sub8
    # ratio 25: 25 steps per epoch, 125 in all (AP 0.95 was reached after 100 in development)
    cfg = small_cfg(ann, images, ratio=25, epochs=5, batch=8)
    cfg.optim.lr = 2e-3
    cfg.sched = T.SchedConfig(type="cosine", min_lr_ratio=0.05, warmup_iters=10, warmup_ratio=0.1)
    cfg.data.val = T.ValSet(str(ann), str(images))
    cfg.val = T.ValConfig(every=5, flip=False, batch=32)
    summary = T.Trainer(cfg, tmp_path / "run").fit()
    assert summary["step"] == 125
    assert summary["best_ap"] > 0.8, summary
    from kanpose_cli.core.weights.checkpoint import load_checkpoint

    m = load_checkpoint(summary["last"])
    assert evaluate_model(m, ann, images, boxes="gt", flip=False)["AP"] > 0.8


def test_results_csv_and_tensorboard_scalars(sub8, tmp_path):
    """Every run writes results.csv (one row per epoch: step, loss, lr, speed, validation AP, time); with tensorboard
    installed also event files whose scalars are the same numbers (per step: loss, lr; per epoch: the CSV row)."""
    import csv

    ann, images = sub8
    cfg = small_cfg(ann, images, epochs=2)
    cfg.data.val = T.ValSet(str(ann), str(images))
    cfg.val = T.ValConfig(every=1, flip=False, batch=32)
    steps = []

    class Steps(T.Callback):
        def on_step_end(self, trainer, info):
            steps.append(info)

    trainer = T.Trainer(cfg, tmp_path / "run", callbacks=[Steps()])
    trainer.fit()
    rows = list(csv.DictReader(open(tmp_path / "run" / "results.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and [int(r["step"]) for r in rows] == [2, 4]
    for key in ("train_loss", "lr", "img_per_s", "AP", "AP50", "AR", "time_s"):
        assert all(r[key] != "" for r in rows), key
    for row, hist in zip(rows, trainer.history):
        assert float(row["train_loss"]) == pytest.approx(hist["train_loss"])
        assert float(row["AP"]) == pytest.approx(hist["AP"]) and 0.0 <= hist["AP"] <= 1.0
    assert float(rows[0]["train_loss"]) == pytest.approx((steps[0]["loss"] + steps[1]["loss"]) / 2)
    events = list((tmp_path / "run").glob("events.out.tfevents.*"))
    if not T.tensorboard_available():
        assert events == []
        pytest.skip("tensorboard not installed: CSV checked, event files not written")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert len(events) == 1
    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3, 4]
    assert [e.value for e in loss] == pytest.approx([s["loss"] for s in steps], rel=1e-6)
    assert [e.value for e in acc.Scalars("train/lr")] == pytest.approx([s["lr"] for s in steps], rel=1e-6)
    ap = acc.Scalars("epoch/AP")
    assert [e.step for e in ap] == [1, 2] and [e.value for e in ap] == pytest.approx([h["AP"] for h in trainer.history])
    assert [e.value for e in acc.Scalars("epoch/train_loss")] == pytest.approx(
        [h["train_loss"] for h in trainer.history], rel=1e-6)


def test_freeze_bn_stats_keeps_running_statistics(sub8, tmp_path):
    """``freeze_bn_stats``: BatchNorm running mean/var stay as loaded while the weights (BN affine included) train."""
    ann, images = sub8
    cfg = small_cfg(ann, images, epochs=1, freeze_bn_stats=True)
    trainer = T.Trainer(cfg, tmp_path / "run")
    bn = [m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone(), m.weight.detach().clone()) for m in bn]
    trainer.fit()
    assert all(torch.equal(m.running_mean, a) and torch.equal(m.running_var, b) for m, (a, b, _) in zip(bn, before))
    assert any(not torch.equal(m.weight.detach(), w) for m, (_, _, w) in zip(bn, before))
    trainer.train_mode()
    assert trainer.model.training and not any(m.training for m in bn)
    moving = T.Trainer(small_cfg(ann, images, epochs=1), tmp_path / "run2")
    bn2 = [m for m in moving.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    start = [m.running_mean.clone() for m in bn2]
    moving.fit()
    assert any(not torch.equal(m.running_mean, a) for m, a in zip(bn2, start))  # the default updates them


def test_train_cli_without_tensorboard_notes_csv_only(sub8, tmp_path, monkeypatch):
    """Without tensorboard: one note says the logs are CSV only, and no event file is written."""
    import kanpose_cli.core.training.loop as loop

    monkeypatch.setattr(T, "tensorboard_available", lambda: False)
    monkeypatch.setattr(loop, "tensorboard_available", lambda: False)
    monkeypatch.setenv("COLUMNS", "300")
    ann, images = sub8
    r = CliRunner().invoke(app, ["train", "--train-ann", str(ann), "--train-images", str(images), "--epochs", "1",
                                 "--batch", "8", "--no-aug", "--workers", "0", "-q", "--set",
                                 "model_overrides.stem_channels=[16,16,64]", "--project", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("note:") and "tensorboard" in ln]
    assert len(notes) == 1 and "results.csv" in notes[0] and "kanpose[tensorboard]" in notes[0]
    run = tmp_path / "runs" / "exp1"
    assert (run / "results.csv").read_text().count("\n") == 2  # header + 1 epoch
    assert list(run.glob("events.out.tfevents.*")) == []


# ------------------------------------------------------------------------------------------------- seed lineage
def test_init_from_a_kanpose_run_defaults_to_its_seed_plus_one(sub8, tmp_path):
    """Training in phases (``--init`` from the previous phase) must not replay the previous phase's crops: without
    ``--seed`` the new run takes the highest seed of the checkpoint's lineage + 1; an explicit seed is kept; other
    weights give 0."""
    from kanpose_cli.core.weights import save_checkpoint

    ann, images = sub8
    a = T.Trainer(small_cfg(ann, images, aug=AugmentConfig(), seed=4), tmp_path / "a")
    ckpt = save_checkpoint(a.model, tmp_path / "a.safetensors", a.provenance(None))
    b = T.Trainer(small_cfg(ann, images, aug=AugmentConfig(), seed=None, init=str(ckpt)), tmp_path / "b")
    c = T.Trainer(small_cfg(ann, images, aug=AugmentConfig(), seed=4, init=str(ckpt)), tmp_path / "c")
    assert (a.cfg.seed, b.cfg.seed, c.cfg.seed) == (4, 5, 4)
    assert b.provenance(None)["config"]["seed"] == 5 and b.sampler.seed == 5 and b.dataset.seed == 5
    assert a.provenance(None)["seeds_before"] == [] and b.provenance(None)["seeds_before"] == [4]
    # the whole lineage counts: a run given a low seed mid-chain does not make its children replay seeds 1..5
    ckpt_b = save_checkpoint(b.model, tmp_path / "b.safetensors", b.provenance(None))
    e = T.Trainer(small_cfg(ann, images, aug=AugmentConfig(), seed=0, init=str(ckpt_b)), tmp_path / "e")
    assert e.provenance(None)["seeds_before"] == [4, 5]
    ckpt_e = save_checkpoint(e.model, tmp_path / "e.safetensors", e.provenance(None))
    assert T.lineage_seeds(str(ckpt_e)) == [0, 4, 5] and T.default_seed(str(ckpt_e)) == 6
    assert np.array_equal(a.dataset[0]["image"], c.dataset[0]["image"])  # same seed: the same augmented crop
    assert not np.array_equal(a.dataset[0]["image"], b.dataset[0]["image"])
    assert T.Trainer(small_cfg(ann, images, seed=None), tmp_path / "d").cfg.seed == 0
    plain = tmp_path / "plain.safetensors"
    save_checkpoint(a.model, plain)  # no training provenance
    assert T.default_seed(str(plain)) == 0 and T.default_seed("hub") == 0 and T.default_seed(None) == 0
    # shipped weights (tools/ship_weights.py) list one config per phase: continue after the highest seed
    shipped = tmp_path / "shipped.safetensors"
    phases = [{"run": f"exp{i}", "config": {"seed": s}} for i, s in ((1, 0), (2, 6), (3, 2))]
    save_checkpoint(a.model, shipped, {"trained_with": "kanpose train", "phases": phases})
    assert T.default_seed(str(shipped)) == 7
    phases[1]["seeds_before"] = [9]  # a phase that started from weights trained with seed 9
    save_checkpoint(a.model, shipped, {"trained_with": "kanpose train", "phases": phases})
    assert T.lineage_seeds(str(shipped)) == [0, 2, 6, 9] and T.default_seed(str(shipped)) == 10


# ------------------------------------------------------------------------------------------------- resume
class _Kill(Exception):
    pass


class _KillAt(T.Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, info):
        if trainer.step == self.step:
            raise _Kill(f"killed at step {trainer.step}")


def _opt_state_equal(a: dict, b: dict) -> bool:
    if a["param_groups"] != b["param_groups"] or a["state"].keys() != b["state"].keys():
        return False
    return all(torch.equal(a["state"][k][n], b["state"][k][n]) for k in a["state"] for n in a["state"][k])


@pytest.mark.parametrize("save_every_steps", [0, 3])
def test_kill_mid_epoch_and_resume_loses_nothing(sub8, tmp_path, save_every_steps):
    """Run A: 3 epochs straight. Run B: killed in the middle of epoch 2, resumed from ``state/last.pt``.
    B's checkpoint is exactly the state at its last save; after resuming, B ends bit-identical to A."""
    ann, images = sub8
    cfg = small_cfg(ann, images, epochs=3, batch=2, save_every_steps=save_every_steps)  # 4 iters per epoch
    cfg.ema.enabled = True
    a = T.Trainer(cfg, tmp_path / "a")
    a.fit()

    b = T.Trainer(cfg, tmp_path / "b", callbacks=[_KillAt(7)])  # epoch 2 (0-based 1), iteration 3 of 4
    with pytest.raises(_Kill):
        b.fit()
    path = T.find_resume_state(str(tmp_path / "b"))
    state = T.load_state(path)  # weights_only=True inside
    if save_every_steps:
        assert (state["epoch"], state["step"], state["iter_in_epoch"]) == (1, 6, 2)
    else:
        assert (state["epoch"], state["step"], state["iter_in_epoch"]) == (1, 4, 0)
    # the saved state is what the trainer had at that step: rebuild and compare to a fresh run stopped there
    probe = T.Trainer(cfg, tmp_path / "probe", callbacks=[_KillAt(state["step"])])
    with pytest.raises(_Kill):
        probe.fit()
    assert _opt_state_equal(probe.optimizer.state_dict(), state["optimizer"])
    for k, v in probe.model.state_dict().items():
        assert torch.equal(v, state["model"][k]), k

    b2 = T.Trainer(None, path.parent.parent, state=state)
    assert (b2.epoch, b2.step) == (state["epoch"], state["step"])
    assert _opt_state_equal(b2.optimizer.state_dict(), state["optimizer"])
    b2.fit()
    assert (b2.epoch, b2.step) == (a.epoch, a.step) == (3, 12)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b2.model.state_dict()[k]), k
    for k, v in a.ema.module.state_dict().items():
        assert torch.equal(v, b2.ema.module.state_dict()[k]), k
    assert _opt_state_equal(a.optimizer.state_dict(), b2.optimizer.state_dict())
    assert [r["train_loss"] for r in a.history][-1] == pytest.approx([r["train_loss"] for r in b2.history][-1])
    assert (path.parent.parent / "weights" / "last.safetensors").is_file()
    assert (path.parent.parent / "results.csv").read_text().count("\n") == 4  # header + 3 epochs


def test_cli_resume_of_a_killed_subprocess(sub8, tmp_path):
    """A real ``kanpose train`` process is killed after its first checkpoint; ``--resume auto`` finishes it."""
    ann, images = sub8
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    base = [sys.executable, "-m", "kanpose_cli", "train", "--model", "amfacpose-r18-256x192",
            "--train-ann", str(ann), "--train-images", str(images), "--epochs", "2", "--batch", "4", "--workers", "0",
            "--no-aug", "--project", str(tmp_path / "runs"), "-q", "--set", "model_overrides.input_size=[128,96]",
            "--set", "model_overrides.maxpool=true", "--set", "save_every_steps=1"]
    proc = subprocess.Popen(base, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state_file = tmp_path / "runs" / "exp1" / "state" / "last.pt"
    import time

    t0 = time.time()
    while not state_file.exists() and proc.poll() is None and time.time() - t0 < 240:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert state_file.exists()
    saved = T.load_state(state_file)
    assert saved["step"] >= 1
    res = subprocess.run([sys.executable, "-m", "kanpose_cli", "train", "--resume", "auto", "--project",
                          str(tmp_path / "runs"), "-q"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"step {saved['step']}" in res.stderr
    final = T.load_state(state_file)
    assert (final["epoch"], final["step"]) == (2, 4)
    assert not (tmp_path / "runs" / "exp2").exists()


# ------------------------------------------------------------------------------------------------- DDP
def test_ddp_two_cpu_processes_gloo(sub8, tmp_path):
    ann, images = sub8
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "kanpose_cli", "train", "--model", "amfacpose-r18-256x192", "--train-ann", str(ann),
           "--train-images", str(images), "--epochs", "1", "--batch", "2", "--workers", "0", "--no-aug",
           "--project", str(tmp_path / "runs"), "-q", "--set", "model_overrides.input_size=[128,96]",
           "--set", "model_overrides.maxpool=true"]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    runs = sorted((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == ["exp1"]  # only rank 0 made a run folder
    state = T.load_state(runs[0] / "state" / "last.pt")
    assert state["world_size"] == 2
    assert (state["epoch"], state["step"]) == (1, 2)  # 8 persons / (2 ranks x batch 2) = 2 steps
    assert (runs[0] / "weights" / "last.safetensors").is_file()
    assert res.stderr.count("kanpose train ·") == 1  # rank-0 logging only


# ------------------------------------------------------------------------------------------------- label
def test_label_images_coco_format(tmp_path):
    from kanpose_cli.core.data.sources import Frame
    from kanpose_cli.core.tasks.labeler import label_images

    img = np.zeros((100, 80, 3), np.uint8)
    kpts = np.tile(np.array([[10.0, 20.0]]), (17, 1))[None].repeat(2, 0)
    kscores = np.full((2, 17), 0.9)
    kscores[0, :5] = 0.1

    def teacher(image, path):
        return np.array([[5, 5, 45, 85], [0, 0, 10, 10]], np.float32), np.array([0.9, 0.3]), kpts, kscores

    frames = [Frame(img, str(tmp_path / "000000000042.jpg")), Frame(None, str(tmp_path / "bad.jpg"), error="x")]
    coco, summary = label_images(frames, teacher, tmp_path, box_thr=0.5, kpt_thr=0.5)
    assert (summary.images, summary.skipped, summary.persons) == (1, 1, 1)
    a = coco["annotations"][0]
    assert coco["images"][0] == {"id": 42, "file_name": "000000000042.jpg", "width": 80, "height": 100}
    assert a["bbox"] == [5.0, 5.0, 40.0, 80.0] and a["area"] == 3200.0 and a["iscrowd"] == 0
    assert a["num_keypoints"] == 12 and a["keypoints"][:3] == [0, 0, 0] and a["keypoints"][15:18] == [10.0, 20.0, 2]
    assert coco["categories"][0]["keypoints"][0] == "nose" and [16, 14] in coco["categories"][0]["skeleton"]
    # what label writes, train reads
    (tmp_path / "000000000042.jpg").write_bytes(b"")
    p = tmp_path / "pseudo.json"
    p.write_text(json.dumps(coco))
    assert len(load_coco_instances(p, tmp_path)) == 1


@pytest.mark.slow
def test_label_cli_yolo_teacher(unlabeled_images, tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for f in sorted(unlabeled_images.iterdir())[:2]:
        (imgs / f.name).symlink_to(f)
    out = tmp_path / "labels.json"
    res = CliRunner().invoke(app, ["label", str(imgs), "--teacher", "yolo:yolo11n-pose.pt", "--out", str(out),
                                   "--box-thr", "0.5", "--kpt-thr", "0.5"])
    assert res.exit_code == 0, res.output
    coco = json.loads(out.read_text())
    assert len(coco["images"]) == 2
    for a in coco["annotations"]:
        v = a["keypoints"][2::3]
        assert set(v) <= {0, 2} and a["num_keypoints"] == v.count(2) and a["iscrowd"] == 0


def test_label_cli_bad_teacher(tmp_path):
    res = CliRunner().invoke(app, ["label", str(tmp_path), "--teacher", "foo"])
    assert res.exit_code != 0 and "Traceback" not in res.output
