"""Training config and recipes (defaults in one place, per-variant layer decay, round trip, ``--set`` validation) and
the ratio sampler over several training sets. Fast: no training."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict

import numpy as np
import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.data.training_sets import DataSource
from kanpose_cli.core import training as T
from kanpose_cli.core.training.config import RECIPES_DIR, _merge
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.models.registry import MODELS, get_spec

from conftest import COCO_MINI, SHARED_DATA

FAMILIES = sorted(p.stem for p in RECIPES_DIR.glob("*.json"))


# ------------------------------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("model,decay", [("vitpose-s", 0.8), ("vitpose-s-simple", 0.8), ("vitpose-b", 0.75),
                                         ("vitpose-b-simple", 0.75), ("vitpose-l", 0.8), ("vitpose-h", 0.85),
                                         ("kanfpn", 0.8), ("amfacpose-r18-256x192", None)])
def test_layer_decay_per_variant(model, decay):
    """ViTPose configs: S 0.8, B 0.75, L 0.8, H 0.85; KAN-FPN is ViTPose-S based; CNNs have none."""
    assert T.TrainConfig.from_recipe(model).optim.layer_decay == decay


def test_every_family_has_a_recipe_and_every_model_of_a_variant_family_a_section():
    families = {s.family for _, s in MODELS.items()}
    assert families <= set(FAMILIES)
    for fam in FAMILIES:
        variants = T.load_recipe(fam).get("variants", {})
        for name in variants:
            assert get_spec(name).family == fam, f"{fam}.json: variant {name} is not a {fam} model"
        if fam == "vitpose":  # layer decay lives only in the variant sections: a new variant needs one
            assert {n for n, s in MODELS.items() if s.family == fam} == set(variants)


@pytest.mark.parametrize("family", FAMILIES)
def test_recipes_list_only_known_keys_that_differ_from_the_defaults(family):
    raw = T.load_recipe(family)
    variants = raw.pop("variants", {})
    defaults = T.TrainConfig(model="x").to_dict()
    flat_defaults = T.flatten(defaults)
    known = T.known_keys()
    for key, value in T.flatten(raw).items():
        assert key in known or key.startswith("model_overrides."), f"{family}.json: unknown key {key}"
        assert value != flat_defaults.get(key, object()), f"{family}.json: {key} = {value!r} is the default"
    family_values = T.flatten(_merge(defaults, raw))
    for model, section in variants.items():
        for key, value in section.items():
            assert key in known, f"{family}.json variant {model}: unknown key {key}"
            assert value != family_values.get(key), f"{family}.json variant {model}: {key} = the family's value"


def test_recipe_milestones_scale_with_the_run_length():
    cfg = T.TrainConfig.from_recipe("amfacpose-r18-256x192")
    assert cfg.sched.milestones == (90, 120) and cfg.sched.milestones_epochs == cfg.epochs == 140
    cfg = T.apply_overrides(cfg, ["epochs=14"])
    assert T.LrSchedule(cfg.sched, cfg.epochs, 10).milestones == [9, 12]


# ------------------------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("model", ["vitpose-s", "amfacpose-r18-256x192", "flatpose-b", "kanfpn"])
def test_config_round_trip(model, tmp_path):
    cfg = T.TrainConfig.from_recipe(model)
    cfg = T.apply_values(cfg, {"data.train": [DataSource("a.json", "imgs", ratio=0.5), DataSource("j.mat", "i")],
                               "data.val": {"ann": "v.json", "images": "v"}, "model_overrides": {"x": [1, 2]},
                               "init": "hub"})
    d = json.loads(json.dumps(cfg.to_dict()))  # plain JSON
    back = T.TrainConfig.from_dict(d)
    assert back == cfg and back.to_dict() == d
    assert back.data.train[1].format == "lsp" and back.data.train[0].ratio == 0.5
    assert isinstance(back.optim.betas, tuple) and isinstance(back.aug.scale_range, tuple)
    no_aug = T.apply_overrides(cfg, ["aug=null"])
    assert T.TrainConfig.from_dict(no_aug.to_dict()) == no_aug and no_aug.aug is None


def test_from_dict_fills_defaults_and_rejects_unknown_or_mistyped_keys():
    cfg = T.TrainConfig.from_dict({"model": "vitpose-s", "optim": {"lr": 1}})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float) and cfg.epochs == T.TrainConfig(model="x").epochs
    with pytest.raises(UsageError, match="did you mean optim.lr"):
        T.TrainConfig.from_dict({"model": "x", "optim": {"lrr": 1}})
    with pytest.raises(UsageError, match="missing model"):
        T.TrainConfig.from_dict({})
    with pytest.raises(UsageError, match="epochs: expected an integer"):
        T.TrainConfig.from_dict({"model": "x", "epochs": "ten"})
    with pytest.raises(UsageError, match="amp must be"):
        T.TrainConfig.from_dict({"model": "x", "amp": "fp8"})
    with pytest.raises(UsageError, match=r"data.train\[0\]: missing images"):
        T.TrainConfig.from_dict({"model": "x", "data": {"train": [{"ann": "a.json"}]}})


def test_from_dict_reads_configs_of_older_runs():
    """config.json / state of runs started before the typed config: ``recipe`` and ``data.repeat`` keys."""
    old = {"model": "amfacpose-r18-256x192", "recipe": "amfacpose", "epochs": 10,
           "optim": {"lr": 0.001, "betas": [0.9, 0.999], "weight_decay": 0.0001, "layer_decay": None},
           "sched": {"type": "multistep", "milestones": [90, 120], "scale_with_epochs": True},
           "aug": {"flip_prob": 0.5, "rotate_factor": 30.0},
           "data": {"train": [{"ann": "a.json", "images": "i"}], "val": None, "repeat": 3}}
    cfg = T.TrainConfig.from_dict(old)
    assert cfg.sched.milestones_epochs == 140 and cfg.data.train[0].ratio == 3.0
    assert T.LrSchedule(cfg.sched, cfg.epochs, 5).milestones == [6, 9]  # as the old trainer computed them


def test_set_validation():
    cfg = T.TrainConfig.from_recipe("vitpose-s")
    out = T.apply_overrides(cfg, ["aug=null", "aug.rotate_factor=40", "data.val.ann=v.json", "data.val.images=v",
                                  "model_overrides.anything=1", "optim.layer_decay=null", "clip_grad=null"])
    assert out.aug.rotate_factor == 40 and out.aug.flip_prob == 0.5  # a null section is re-filled with defaults
    assert out.data.val == T.ValSet("v.json", "v") and out.model_overrides == {"anything": 1}
    assert out.optim.layer_decay is None and out.clip_grad is None and cfg.optim.layer_decay == 0.8
    for sets, text in [(["optim.lrr=1"], "did you mean optim.lr"), (["optim.lr"], "expected key=value"),
                       (["sched.type=step"], "multistep or cosine"), (["batch=2.5"], "batch: expected an integer"),
                       (["ema.enabled=1"], "expected true or false"), (["aug.scale_range=[1]"], "expected 2 values"),
                       (["data.train=[{\"ann\": \"x.txt\", \"images\": \"i\"}]"], "x.txt")]:
        with pytest.raises(UsageError, match=text.replace("[", r"\[")):
            T.apply_overrides(cfg, sets)


# ------------------------------------------------------------------------------------------------- sampler
def test_ratio_sampler_epoch_size_and_shares():
    sizes, ratios = [10, 4, 6], [0.5, 2.0, 1.0]
    s = T.RatioSampler(sizes, ratios, seed=3)
    assert s.epoch_size == 5 + 8 + 6 == len(s) == len(list(s))
    assert s.copies == 2
    items = list(s)
    assert len(set(items)) == len(items) and max(items) < s.num_persons * s.copies  # every draw a distinct item
    people = [s.person(i) for i in items]
    source = np.searchsorted(np.cumsum(sizes), people, side="right")
    assert Counter(source.tolist()) == {0: 5, 1: 8, 2: 6}
    assert Counter(p for p in people if 10 <= p < 14) == {p: 2 for p in range(10, 14)}  # ratio 2: each twice
    assert len(set(p for p in people if p < 10)) == 5  # ratio 0.5: a half, without repeats


def test_ratio_sampler_is_a_function_of_seed_and_epoch():
    a, b = T.RatioSampler([10, 4], [0.5, 1.5], seed=1), T.RatioSampler([10, 4], [0.5, 1.5], seed=1)
    for e in (0, 1, 7):
        a.set_epoch(e)
        b.set_epoch(e)
        assert list(a) == list(b)
    a.set_epoch(0)
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(a) != list(T.RatioSampler([10, 4], [0.5, 1.5], seed=2))
    draws = [{a.person(i) for i in a.epoch_items(e) if a.person(i) < 10} for e in range(6)]
    assert len({frozenset(d) for d in draws}) > 1  # the half of the first source changes between epochs


def test_ratio_sampler_resume_skip_and_shards():
    full = T.RatioSampler([7, 3], [1.0, 0.5], seed=0)  # 7 + 2 = 9 draws
    full.set_epoch(4)
    order = list(full)
    resumed = T.RatioSampler([7, 3], [1.0, 0.5], seed=0)
    resumed.set_epoch(4)
    resumed.skip = 4
    assert list(resumed) == order[4:] and len(resumed) == 5
    shards = [T.RatioSampler([7, 3], [1.0, 0.5], seed=0, rank=r, world=2) for r in range(2)]
    for sh in shards:
        sh.set_epoch(4)
    got = [list(sh) for sh in shards]
    assert len(got[0]) == len(got[1]) == shards[0].num_samples == 5  # padded: 9 -> 10
    padded = order + order[:1]
    assert got[0] == padded[0::2] and got[1] == padded[1::2]


def test_ratio_sampler_drawing_nobody_is_a_usage_error():
    with pytest.raises(UsageError, match="draw no person"):
        T.RatioSampler([1], [0.2])


# ------------------------------------------------------------------------------------------------- data options
def test_train_sources_pairing_and_errors(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "joints.mat"
    a.write_text("{}")
    b.write_bytes(b"")
    src = T.train_sources([a, b], [tmp_path], [0.5])
    assert [s.format for s in src] == ["coco", "lsp"] and [s.ratio for s in src] == [0.5, 0.5]
    assert [s.ratio for s in T.train_sources([a, b], [tmp_path, tmp_path])] == [1.0, 1.0]
    with pytest.raises(UsageError, match="2 annotation files, 3 ratios"):
        T.train_sources([a, b], [tmp_path], [1, 2, 3])
    with pytest.raises(UsageError, match="1 annotation files, 2 image folders"):
        T.train_sources([a], [tmp_path, tmp_path])
    with pytest.raises(InputError, match="nope.json"):
        T.train_sources([tmp_path / "nope.json"], [tmp_path])
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(UsageError, match="x.txt"):
        T.train_sources([tmp_path / "x.txt"], [tmp_path])
    with pytest.raises(UsageError, match="positive"):
        T.train_sources([a], [tmp_path], [0.0])


def test_cli_train_ratio_and_lsp_show_config(tmp_path, monkeypatch):
    lsp = SHARED_DATA / "lspet" / "joints.mat"
    coco = COCO_MINI / "annotations" / "person_keypoints_train2017.json"
    if not (lsp.is_file() and coco.is_file()):
        pytest.skip(f"shared data not found under {SHARED_DATA}")
    monkeypatch.chdir(tmp_path)
    args = ["train", "--model", "vitpose-s", "--train-ann", str(coco), "--train-images", str(COCO_MINI / "train2017"),
            "--train-ann", str(lsp), "--train-images", str(lsp.parent / "images")]
    res = CliRunner().invoke(app, [*args, "--train-ratio", "1", "--train-ratio", "0.25", "--show-config"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.stdout)
    assert [(s["format"], s["ratio"]) for s in cfg["data"]["train"]] == [("coco", 1.0), ("lsp", 0.25)]
    assert cfg["optim"]["layer_decay"] == 0.8
    res = CliRunner().invoke(app, [*args, "--train-ratio", "1", "--train-ratio", "2", "--train-ratio", "3"])
    assert res.exit_code == 2 and "3 ratios" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_cli_bad_annotation_file_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    res = CliRunner().invoke(app, ["train", "--model", "amfacpose-r18-256x192", "--train-ann", str(bad),
                                   "--train-images", str(tmp_path), "--project", str(tmp_path / "runs")])
    assert res.exit_code == 1, res.output
    assert "broken.json" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "runs").exists()  # a run that fails to set up leaves no folder


# ------------------------------------------------------------------------------------------------- model configs
def test_weights_files_with_the_retired_layer_decay_field_still_load():
    """``layer_decay`` left the ViTPose / KAN-FPN model configs (it is a training setting now); cards written
    before still carry it."""
    from kanpose_cli.core.weights.card import ModelCard
    from kanpose_cli.core.weights.checkpoint import model_from_card

    spec = get_spec("vitpose-s")
    assert "layer_decay" not in asdict(spec.config)
    model = model_from_card(ModelCard(model="vitpose-s", config={**asdict(spec.config), "layer_decay": 0.8}))
    assert model.config == spec.config


def test_finetune_defaults_from_the_same_models_weights(tmp_path):
    """``--init`` with the model's own trained weights and no ``--lr``: lr × 0.1, with a note; an explicit lr (every
    reproduce command of the model card), another model's weights, hub or no init: unchanged."""
    from kanpose_cli.core.models import create_model
    from kanpose_cli.core.weights import resolve_init, save_checkpoint

    shipped = resolve_init("shipped")
    base = T.apply_values(T.TrainConfig.from_recipe("amfacpose-r18-128x96"), {"init": shipped})
    cfg, note = T.finetune_defaults(base, {"init"})
    assert cfg.optim.lr == pytest.approx(base.optim.lr * 0.1) and not cfg.freeze_bn_stats
    assert base.optim.lr == pytest.approx(1e-3)  # the input is not changed
    assert "lr 0.0001" in note and "× 0.1" in note
    assert T.finetune_defaults(base, {"init", "optim.lr"}) == (base, None)
    other = save_checkpoint(create_model("amfacpose-r18-256x192"), tmp_path / "other.safetensors")
    for init in (str(other), "hub"):
        cfg = T.apply_values(T.TrainConfig.from_recipe("amfacpose-r18-128x96"), {"init": init})
        assert T.finetune_defaults(cfg, {"init"}) == (cfg, None)
    scratch = T.TrainConfig.from_recipe("amfacpose-r18-128x96")
    assert T.finetune_defaults(scratch, set()) == (scratch, None)


def test_train_cli_show_config_fine_tune_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "a.json").write_text('{"images": [], "annotations": [], "categories": []}')
    common = ["train", "--init", "shipped", "--train-ann", "a.json", "--train-images", "imgs", "--show-config"]
    r = CliRunner().invoke(app, common)
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert cfg["optim"]["lr"] == pytest.approx(1e-4) and cfg["freeze_bn_stats"] is False
    assert cfg["init"].endswith("amfacpose-r18-128x96-coco-lsp.safetensors")
    for extra in (["--lr", "5e-4"], ["--set", "optim.lr=5e-4"]):
        cfg = json.loads(CliRunner().invoke(app, common + extra).stdout)
        assert cfg["optim"]["lr"] == pytest.approx(5e-4)
