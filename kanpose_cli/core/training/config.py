"""Typed training configuration: every default in one place, recipes that hold only what differs.

The defaults are the field defaults of the dataclasses below (generic mmpose top-down settings: Adam(W) lr 5e-4,
210 epochs, ×0.1 at epochs 170/200, linear warmup 500 iterations from 0.001 (at most 10 % of the run's steps), batch
64 per process; augmentation:
:class:`~kanpose_cli.core.data.augment.AugmentConfig`). A family's recipe, ``kanpose_cli/core/recipes/<family>.json``,
lists only the values in which that family's paper differs from them (nested sections, e.g. ``{"optim": {"lr":
1e-3}}``), plus a ``"variants"`` section of dotted overrides for the registered model names whose papers differ
from the family's (ViTPose's layer decay: S 0.8, B 0.75, L 0.8, H 0.85). ``"_reference"`` strings cite the papers.

Effective config = defaults ← family recipe ← variant section ← CLI options ← ``--set key=value``
(:meth:`TrainConfig.from_recipe`, :func:`apply_overrides`). :meth:`TrainConfig.to_dict` is plain JSON (saved as
``<run>/config.json`` and in the training state); :meth:`TrainConfig.from_dict` reads it back, also the configs
written before the typed config existed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kanpose_cli.core.config_io import dataclass_in, from_dict, to_plain
from kanpose_cli.core.data.augment import AugmentConfig
from kanpose_cli.core.data.training_sets import DataSource
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.keypoints import load_keypoint_set
from kanpose_cli.core.registry import close_matches

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"  # kanpose_cli/core/recipes
FREE_FORM_KEYS = ("model_overrides", "keypoints")  # sections whose sub-keys are checked by the model config, not here
SCHEDULES = ("multistep", "cosine")
AMP_MODES = ("none", "bf16", "fp16")


@dataclass
class OptimConfig:
    """AdamW settings (ViTPose ``layer_decay_optimizer_constructor``; see :func:`.optim.param_groups`).

    Attributes:
        lr: base learning rate (per-group ``lr = lr · schedule factor · lr_scale``).
        betas: AdamW betas.
        weight_decay: decoupled weight decay (0 for 1-D parameters, biases and ``no_decay_keys``).
        layer_decay: layer-wise lr decay rate over the ViT blocks, or None (every group at scale 1).
        no_decay_keys: parameter-name substrings without weight decay.
        group0_keys: parameter-name substrings put in layer 0 (the lowest lr scale) by layer decay.
    """

    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    layer_decay: float | None = None
    no_decay_keys: tuple[str, ...] = ("pos_embed", "cls_token")
    group0_keys: tuple[str, ...] = ("patch_embed", "pos_embed", "cls_token")


@dataclass
class SchedConfig:
    """Learning-rate schedule per iteration (see :class:`.optim.LrSchedule`).

    Attributes:
        type: ``multistep`` (×``gamma`` at each milestone) or ``cosine`` (to ``min_lr_ratio`` over all iterations).
        milestones: epochs (0-based) at which multistep decays.
        gamma: multistep factor. min_lr_ratio: cosine floor as a fraction of ``lr``.
        warmup_iters: linear warmup length in iterations (the most it may be); warmup_ratio: its starting factor.
        warmup_max_fraction: the warmup never exceeds this fraction of the run's optimiser steps: it lasts
            ``min(warmup_iters, floor(warmup_max_fraction · epochs · iters_per_epoch))`` steps, so a short run (a
            2-epoch fine-tune) reaches its base lr within its first 10 % of steps, as the milestones shrink with it.
            Runs of ≥ ``warmup_iters / warmup_max_fraction`` steps (5000 for the defaults; every shipped recipe's
            full run) keep ``warmup_iters`` unchanged. 1.0 lets the warmup last the whole run.
        scale_with_epochs: rescale the milestones by ``epochs / milestones_epochs`` when the run is shorter/longer.
        milestones_epochs: the run length the milestones are written for (set to the recipe's ``epochs`` by
            :meth:`TrainConfig.from_recipe`; None = this run's ``epochs``, no rescaling).

    Raises:
        UsageError: unknown ``type``.
    """

    type: str = "multistep"
    milestones: tuple[int, ...] = (170, 200)
    gamma: float = 0.1
    min_lr_ratio: float = 0.0
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    warmup_max_fraction: float = 0.1
    scale_with_epochs: bool = True
    milestones_epochs: int | None = None

    def __post_init__(self):
        if self.type not in SCHEDULES:
            raise UsageError(f"sched.type must be {' or '.join(SCHEDULES)}, got {self.type!r}")
        if not 0.0 <= self.warmup_max_fraction <= 1.0:
            raise UsageError(f"sched.warmup_max_fraction must be in [0, 1], got {self.warmup_max_fraction!r}")


@dataclass
class EmaConfig:
    """mmpose ``ExpMomentumEMA`` (see :class:`.optim.ModelEMA`); validation and export use the EMA weights.

    Attributes:
        enabled: keep an EMA copy. momentum: final momentum. gamma: warm-up constant in updates.
    """

    enabled: bool = False
    momentum: float = 2e-4
    gamma: float = 2000.0


@dataclass
class ValConfig:
    """Validation (COCO keypoint AP with GT boxes on ``data.val``).

    Attributes:
        every: validate every N epochs (and after the last). flip: flip test. batch: inference batch size.
    """

    every: int = 10
    flip: bool = True
    batch: int = 32


@dataclass
class ValSet:
    """The validation set: a COCO keypoint JSON ``ann`` and its image folder ``images``; or (``format`` ``yolo``) a
    YOLO-pose ``data.yaml`` ``ann``, its dataset root ``images`` and its ``split`` (``val``), converted to COCO
    annotations for scoring (:func:`kanpose_cli.core.data.yolo_pose.yolo_to_coco`)."""

    ann: str
    images: str
    format: str = "coco"
    split: str = ""

    def __post_init__(self):
        if self.format not in ("coco", "yolo"):
            raise UsageError(f"data.val.format must be coco or yolo, got {self.format!r}")


@dataclass
class DataConfig:
    """Training and validation data.

    Attributes:
        train: the training sets (:class:`~kanpose_cli.core.data.training_sets.DataSource`: ``ann``, ``images``,
            ``format`` coco|mpii|lsp|yolo, ``ratio`` = persons drawn per epoch as a multiple of the source's size).
        val: the validation set, or None (no AP, no ``best.safetensors``).
        keypoint_set: what ``--keypoint-set`` named (a built-in set or a file), or None. When given, COCO / YOLO
            sources with as many keypoints are read as that set, in order, whatever names their files give.
    """

    train: list[DataSource] = field(default_factory=list)
    val: ValSet | None = None
    keypoint_set: str | None = None


@dataclass
class TrainConfig:
    """The effective training config.

    Attributes:
        model: registered model name. model_overrides: model-config fields to change (checked by the model).
        init: weights to initialise from (:func:`kanpose_cli.core.weights.init_weights`), or None.
        keypoints: the model's keypoint set (:meth:`~kanpose_cli.core.keypoints.KeypointSet.to_dict`), or None for
            the one the data gives (:func:`~kanpose_cli.core.data.training_sets.default_keypoint_set`: the first
            source's own; COCO-17 for a COCO person file, ``mpii16`` for an MPII JSON), resolved when the
            :class:`~.loop.Trainer` is built and recorded, so that ``--resume`` rebuilds the same model.
        epochs: epochs to train. batch: batch size per process. workers: DataLoader workers.
        seed: base seed of the sample order and augmentation, or None for :func:`default_seed` (0, or the highest
            training seed of the ``init`` weights' lineage + 1), resolved when the :class:`~.loop.Trainer` is built.
        optim, sched, ema, val, data: the sections above. aug: augmentation, or None for plain box crops.
        clip_grad: max gradient L2 norm, or None. amp: ``none``, ``bf16`` or ``fp16`` (CUDA only).
        channels_last: NHWC memory layout. sync_bn: SyncBatchNorm under DDP (CUDA only).
        freeze_bn_stats: keep every BatchNorm's running mean/variance as loaded (BN layers in eval mode while
            training; their affine weights still train). Off by default, also for fine-tunes: measured no better
            there (:func:`finetune_defaults`).
        save_every_steps: also write the training state every N steps (0 = once per epoch).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        UsageError: a bad ``amp`` value.
    """

    model: str
    model_overrides: dict = field(default_factory=dict)
    init: str | None = None
    keypoints: dict | None = None
    epochs: int = 210
    batch: int = 64
    workers: int = 4
    seed: int | None = None
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    clip_grad: float | None = None
    ema: EmaConfig = field(default_factory=EmaConfig)
    amp: str = "none"
    channels_last: bool = False
    sync_bn: bool = False
    freeze_bn_stats: bool = False
    aug: AugmentConfig | None = field(default_factory=AugmentConfig)
    val: ValConfig = field(default_factory=ValConfig)
    save_every_steps: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    device: str = "auto"

    def __post_init__(self):
        self.amp = str(self.amp).lower()
        if self.amp not in AMP_MODES:
            raise UsageError(f"amp must be none, bf16 or fp16, got {self.amp!r}")

    # -------------------------------------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists); :meth:`from_dict` inverts it."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a (partial) dict: missing keys take the defaults, values are type-checked.

        Also reads configs saved before the typed config (``recipe`` and ``data.repeat`` keys).

        Raises:
            UsageError: unknown key (with the closest known one), wrong type or bad value, missing ``model``.
        """
        return from_dict(cls, _upgrade_legacy(values))

    @classmethod
    def from_recipe(cls, model: str) -> "TrainConfig":
        """Defaults ← ``recipes/<family>.json`` ← its ``variants[model]`` section, for the registered ``model``.

        Raises:
            UsageError: unknown model or family without a recipe; a recipe key that is not a config key.
        """
        from kanpose_cli.core.models.registry import canonical_model_name, get_spec

        model = canonical_model_name(model)  # VitPose-B -> vitpose-b (raises with suggestions if unknown)
        family = get_spec(model).family
        recipe = load_recipe(family)
        variants = recipe.pop("variants", {})
        values = _merge(cls(model=model).to_dict(), recipe)
        where = f"recipe {family}.json"
        for key, value in (variants.get(model) or {}).items():
            if not key.startswith("_"):
                _set_dotted(values, key, value, where=f"{where} (variant {model})")
        try:
            cfg = cls.from_dict(values)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        if cfg.sched.milestones_epochs is None:
            cfg.sched.milestones_epochs = cfg.epochs  # the recipe's milestones are written for its epoch count
        return cfg


# ------------------------------------------------------------------------------------------------- seed
def lineage_seeds(init: str | None) -> list[int]:
    """The training seeds already used by the weights ``init`` descends from, sorted and without repeats.

    A checkpoint written by ``kanpose train`` records its run's config (``provenance.config.seed``) and the seeds of
    the weights that run started from (``provenance.seeds_before``); a shipped file (``tools/ship_weights.py``)
    records the same two per phase (``provenance.phases[i]``). So the whole chain of ``--init`` runs is seen, not
    only the direct parent.

    Args:
        init: a run's ``init`` (a checkpoint path, ``hub``, ``hf://…``) or None.

    Returns:
        The seeds (ints), [] for None, hub weights, foreign checkpoints and unreadable files. Never raises (loading
        ``init`` reports its own errors later).
    """
    if not init:
        return []
    from kanpose_cli.core.weights import read_model_card
    from kanpose_cli.core.weights.hub import is_hub_weights

    if is_hub_weights(init) or not Path(init).is_file():
        return []
    try:
        prov = read_model_card(init).meta.get("provenance") or {}
    except Exception:  # noqa: BLE001 - not a kanpose checkpoint: init_weights reports what it is
        return []
    if not isinstance(prov, dict) or prov.get("trained_with") != "kanpose train":
        return []
    records = [prov] + [p for p in prov.get("phases") or [] if isinstance(p, dict)]
    seeds = []
    for r in records:
        cfg = r.get("config")
        seeds.append(cfg.get("seed") if isinstance(cfg, dict) else None)
        before = r.get("seeds_before")
        seeds.extend(before if isinstance(before, list) else [])
    return sorted({s for s in seeds if isinstance(s, int) and not isinstance(s, bool)})


def default_seed(init: str | None) -> int:
    """The seed of a run that does not choose one: 0, or — when ``init`` descends from ``kanpose train`` runs —
    the highest seed of that lineage + 1 (:func:`lineage_seeds`: the parent run, the runs it started from, every
    phase of a shipped file).

    Why: which persons an epoch draws and how each is augmented are functions of ``(seed, epoch, item)``, so a
    run that continues training from another run's weights with the same seed replays that run's crops exactly
    (epoch e sees the crops of the earlier run's epoch e). Seen on the shipped AMFACPose weights (weights/README.md):
    after five ``--init`` phases with seed 0, the first epoch of the sixth had the lowest train loss of the whole
    training. A chain of ``--init`` runs gets seeds 0, 1, 2, ... this way, and a run given an explicit low seed
    in the middle of a chain does not make its children replay older phases.

    Args:
        init: the run's ``init`` (a checkpoint path, ``hub``, ``hf://…``) or None.

    Returns:
        The seed (an int). Never raises: hub weights, foreign checkpoints and unreadable files give 0.
    """
    seeds = lineage_seeds(init)
    return max(seeds) + 1 if seeds else 0


# ------------------------------------------------------------------------------------------------- fine-tune
FINETUNE_LR_FACTOR = 0.1


def finetune_defaults(cfg: TrainConfig, explicit: set[str]) -> tuple[TrainConfig, str | None]:
    """The default learning rate of a fine-tune: a run whose ``init`` is a kanpose checkpoint of the same model
    (every tensor loads: training continues from trained weights, e.g. ``--init shipped``) and which sets no
    learning rate trains with ``FINETUNE_LR_FACTOR`` (0.1) × the recipe's lr.

    Why (measured, issue 31): the shipped ``amfacpose-r18-128x96`` scores AP 0.305 on coco-val-dev (874 images, GT
    boxes, flip; bootstrap std over images ≈ 0.0095). A 2-epoch fine-tune on coco-mini train2017 (86 persons, 4
    steps of batch 32) at the recipe's lr 1e-3 fell to 0.251; at lr 1e-4 it kept 0.304. Keeping the BatchNorm
    statistics as loaded (``freeze_bn_stats``) on top of lr 1e-4 gave 0.299 (no better, within the noise), so
    they keep updating by default. A recipe's lr is for training from scratch: Adam's first steps move every
    weight by about the lr, which undoes trained weights at 1e-3.

    Args:
        cfg: the effective config. explicit: the dotted keys the user set (``--lr`` counts as ``optim.lr``);
            ``optim.lr`` among them turns the default off (the reproduce commands of the model card all pass
            ``--lr``).

    Returns:
        ``(cfg, note)``: the config (a changed copy, or ``cfg`` itself) and a one-line note saying what changed, or
        None when nothing did. Never raises (an unreadable ``init`` is reported when it is loaded).
    """
    if not cfg.init or "optim.lr" in explicit:
        return cfg, None
    from kanpose_cli.core.weights import read_model_card
    from kanpose_cli.core.weights.hub import is_hub_weights

    if is_hub_weights(cfg.init) or not Path(cfg.init).is_file() or Path(cfg.init).suffix.lower() != ".safetensors":
        return cfg, None
    try:
        same = read_model_card(cfg.init).model == cfg.model
    except Exception:  # noqa: BLE001 - not a kanpose checkpoint: not a fine-tune of this model
        return cfg, None
    if not same:
        return cfg, None
    out = copy.deepcopy(cfg)
    out.optim.lr = cfg.optim.lr * FINETUNE_LR_FACTOR
    note = (f"fine-tune of {cfg.model} from its own trained weights: lr {out.optim.lr:g} (the recipe's "
            f"{cfg.optim.lr:g} × {FINETUNE_LR_FACTOR:g}, for training from scratch); --lr sets another")
    return out, note


# ------------------------------------------------------------------------------------------------- recipes
def load_recipe(family: str) -> dict:
    """The raw recipe of ``family`` (``recipes/<family>.json``) without ``_reference`` keys.

    Raises:
        UsageError: no recipe for ``family``.
    """
    path = RECIPES_DIR / f"{family}.json"
    if not path.is_file():
        known = sorted(p.stem for p in RECIPES_DIR.glob("*.json"))
        raise UsageError(f"no training recipe for family {family!r} (known: {', '.join(known)})")
    return _drop_references(json.loads(path.read_text()))


def _drop_references(d):
    if isinstance(d, dict):
        return {k: _drop_references(v) for k, v in d.items() if k != "_reference"}
    return d


def _merge(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base`` section by section (a None or non-dict value replaces)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in FREE_FORM_KEYS:
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ------------------------------------------------------------------------------------------------- --set
def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested dict (``{"optim": {"lr": 1}} -> {"optim.lr": 1}``); free-form sections and empty
    dicts stay whole."""
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


def known_keys(cls=TrainConfig, prefix: str = "") -> set[str]:
    """Every dotted key of the config dataclass ``cls``, sections included (``optim``, ``optim.lr``, ``aug``,
    ``aug.flip_prob``, ``data.val.ann`` ...). ``model_overrides.*`` is free-form and not listed."""
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        out.add(key)
        sub = dataclass_in(hints[f.name])
        if sub is not None and sub is not DataSource:
            out |= known_keys(sub, key + ".")
    return out


def _check_key(key: str, where: str) -> None:
    if any(key.startswith(f + ".") for f in FREE_FORM_KEYS):
        return
    known = known_keys()
    if key not in known:
        close = close_matches(key, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(sorted(known))}"
        raise UsageError(f"{where}: unknown config key {key!r}{hint}")


def _set_dotted(values: dict, key: str, value, where: str) -> None:
    """``values[a][b][c] = value`` for ``key = "a.b.c"`` (a None section becomes ``{}`` first)."""
    _check_key(key, where)
    node = values
    parts = key.split(".")
    for p in parts[:-1]:
        if node.get(p) is None:
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


def apply_values(cfg: TrainConfig, values: dict[str, Any], where: str = "config") -> TrainConfig:
    """A new config with dotted ``key: value`` pairs set (values as JSON types; checked like :meth:`from_dict`).

    Raises:
        UsageError: unknown key (with a did-you-mean hint) or a value of the wrong type.
    """
    d = cfg.to_dict()
    for key, value in values.items():
        _set_dotted(d, key.strip(), to_plain(value), where)
    return TrainConfig.from_dict(d)


def apply_overrides(cfg: TrainConfig, sets: list[str] | None) -> TrainConfig:
    """Apply ``--set key=value`` overrides (dotted keys, JSON values via :func:`parse_value`) to a copy of ``cfg``.

    Keys must be config keys (``model_overrides.*`` is free-form: the model config checks it).

    Raises:
        UsageError: no ``=``, unknown key (with the closest known key), or a value of the wrong type.
    """
    values = {}
    for item in sets or []:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected key=value (e.g. --set optim.lr=5e-4)")
        key, value = item.split("=", 1)
        values[key.strip()] = parse_value(value)
    return apply_values(cfg, values, where="--set") if values else copy.deepcopy(cfg)


# ------------------------------------------------------------------------------------------------- CLI data options
def train_sources(anns: list, images: list, ratios: list[float] | None = None) -> list[DataSource]:
    """The training sets of ``--train-ann`` / ``--train-images`` / ``--train-ratio``.

    Args:
        anns: annotation files (``.json`` COCO keypoints or mmpose's MPII JSON, ``.mat`` LSP joints, see
            :func:`~kanpose_cli.core.data.training_sets.infer_format`). images: one folder for all, or one per
            file. ratios: one per file, one for all, or none (1 each).

    Raises:
        UsageError: count mismatch, unknown extension, non-positive ratio. InputError: a missing file or folder.
    """
    anns, images, ratios = list(anns), list(images or []), list(ratios or [])
    if len(images) == 1:
        images = images * len(anns)
    if len(images) != len(anns):
        raise UsageError(f"give one --train-images for all --train-ann or one per file ({len(anns)} annotation "
                         f"files, {len(images)} image folders)")
    if len(ratios) <= 1:
        ratios = (ratios or [1.0]) * len(anns)
    if len(ratios) != len(anns):
        raise UsageError(f"give one --train-ratio for all --train-ann or one per file ({len(anns)} annotation "
                         f"files, {len(ratios)} ratios)")
    out = []
    for a, i, r in zip(anns, images, ratios):
        a, i = Path(a).expanduser(), Path(i).expanduser()
        if not a.is_file():
            raise InputError(f"annotation file not found: {a}")
        if not i.is_dir():
            raise InputError(f"images folder not found: {i}")
        out.append(DataSource(str(a.resolve()), str(i.resolve()), ratio=r))
    return out


def yolo_data(data_yaml) -> tuple[list[DataSource], ValSet | None]:
    """The training and validation sets of ``--data data.yaml`` (an ultralytics YOLO-pose dataset): one training
    source (its ``train`` split) and the ``val`` split as the validation set (None when the YAML has none).

    Raises:
        InputError: a missing or malformed YAML, a split entry that does not exist (one line naming the file).
    """
    from kanpose_cli.core.data.yolo_pose import read_data_yaml

    data = read_data_yaml(data_yaml)
    for split, entries in data.splits.items():
        for entry in entries:
            if not entry.exists():
                raise InputError(f"{data.yaml_file}: '{split}' entry {entry} does not exist")
    val = ValSet(str(data.yaml_file), str(data.root), format="yolo", split="val") if "val" in data.splits else None
    return [DataSource(str(data.yaml_file), str(data.root), format="yolo", split="train")], val


def keypoint_set_values(spec: str) -> dict:
    """The config values of ``--keypoint-set NAME|FILE``: ``keypoints`` (the set,
    :func:`~kanpose_cli.core.keypoints.load_keypoint_set`, resolved now so that the run records it whole) and
    ``data.keypoint_set`` (what was named: a built-in name or the file's absolute path).

    Raises:
        UsageError: an unknown name. InputError: a missing or malformed file.
    """
    kset = load_keypoint_set(spec)
    path = Path(str(spec)).expanduser()
    named = str(path.resolve()) if path.suffix.lower() in (".json", ".yaml", ".yml") else str(spec)
    return {"keypoints": kset.to_dict(), "data.keypoint_set": named}


def val_set(ann, images) -> ValSet:
    """The ``--val-ann`` / ``--val-images`` pair.

    Raises:
        InputError: ``ann`` missing. UsageError: ``images`` not given or not a folder.
    """
    ann = Path(ann).expanduser()
    if not ann.is_file():
        raise InputError(f"validation annotation file not found: {ann}")
    if images is None or not Path(images).expanduser().is_dir():
        raise UsageError(f"--val-ann needs --val-images (an existing folder); got {images}")
    return ValSet(str(ann.resolve()), str(Path(images).expanduser().resolve()))


# ------------------------------------------------------------------------------------------------- older configs
def _upgrade_legacy(values: dict) -> dict:
    """Configs written before the typed config (``config.json`` / ``state/last.pt`` of older runs): ``recipe`` (the
    family; its epoch count scaled the milestones) and ``data.repeat`` (passes per epoch; now each source's ratio)."""
    if not isinstance(values, dict) or ("recipe" not in values and "repeat" not in (values.get("data") or {})):
        return values
    values = copy.deepcopy(values)
    values.pop("recipe", None)
    sched = values.get("sched")
    if isinstance(sched, dict) and "milestones_epochs" not in sched and values.get("model"):
        sched["milestones_epochs"] = TrainConfig.from_recipe(values["model"]).sched.milestones_epochs
    data = values.get("data") or {}
    repeat = data.pop("repeat", 1) or 1
    data["train"] = [{**s, "ratio": s.get("ratio", 1.0) * repeat} for s in data.get("train") or []]
    return values
