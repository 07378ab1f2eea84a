"""Training: typed config and recipes, optimiser/scheduler/EMA, ratio sampling over several training sets,
resumable state, DDP, logging, best/last export.

Modules: :mod:`.config` (:class:`TrainConfig`, recipes, ``--set``), :mod:`.optim` (parameter groups with layer-wise
lr decay, :class:`LrSchedule`, :class:`ModelEMA`), :mod:`.sampler` (:class:`RatioSampler`), :mod:`.state` (the
resumable state), :mod:`.loop` (:class:`Trainer`, :class:`Callback`), :mod:`.outputs` (``results.csv``/``.png``).
Process groups: :mod:`kanpose_cli.core.parallel`.

References: mmpose 0.x/1.x training loop and ViTPose's ``layer_decay_optimizer_constructor.py`` (layer-wise lr
decay, no weight decay on 1-D params and ``pos_embed``), mmpose ``ExpMomentumEMA`` (RTMPose/FlatPose), mmcv
``LinearWarmup`` + ``MultiStep``/``CosineAnnealing`` lr policies, mmpose ``CombinedDataset`` (spec §2.7, §3.7,
§7.2, §8.7).

Config: dataclass defaults ← ``kanpose_cli/core/recipes/<family>.json`` (what the family's paper changes) ← its
``variants`` section for the model ← CLI options ← ``--set key=value`` (see :mod:`.config`); the effective config
is saved as ``<run>/config.json``.

Run directory ``runs/train/expN``: ``config.json``, ``state/last.pt`` (full training state, written atomically
every epoch and every ``save_every_steps`` steps; ``torch.load(..., weights_only=True)`` safe: tensors, numbers,
strings, lists and dicts only), ``weights/{last,best}.safetensors`` (pose checkpoints, best by validation AP, via
:func:`kanpose_cli.core.weights.save_checkpoint`), ``results.csv`` (one row per epoch), ``results.png`` and, with
the optional ``tensorboard`` extra, TensorBoard event files (:mod:`.outputs`).

Resume: the state holds the config, model, optimiser, scheduler step, EMA, grad scaler, RNG states (torch, CUDA,
numpy, Python), epoch, step and the position inside the epoch. Which persons an epoch draws and their order are a
function of ``(seed, epoch)``, augmentation of ``(seed, epoch, item)``, so a resumed run continues exactly where the
checkpoint was taken. A new run started with ``--init`` from weights made by ``kanpose train`` defaults to the highest
seed of their lineage + 1 (:func:`default_seed`; the checkpoints record it as ``seeds_before``), so it does not replay
the crops of any earlier phase.
"""

from kanpose_cli.core.training.config import (
    DataConfig,
    EmaConfig,
    OptimConfig,
    SchedConfig,
    TrainConfig,
    ValConfig,
    ValSet,
    apply_overrides,
    apply_values,
    default_seed,
    finetune_defaults,
    keypoint_set_values,
    lineage_seeds,
    flatten,
    known_keys,
    load_recipe,
    parse_value,
    train_sources,
    val_set,
    yolo_data,
)
from kanpose_cli.core.training.loop import Callback, Trainer
from kanpose_cli.core.training.optim import LrSchedule, ModelEMA, layer_id, param_groups
from kanpose_cli.core.training.outputs import (
    TENSORBOARD_HINT,
    TensorBoardLog,
    plot_results,
    tensorboard_available,
    write_results_csv,
)
from kanpose_cli.core.training.sampler import RatioSampler
from kanpose_cli.core.training.state import (
    STATE_FORMAT,
    atomic_torch_save,
    find_resume_state,
    get_rng_state,
    load_state,
    seed_everything,
    set_rng_state,
)

__all__ = [
    "STATE_FORMAT", "Callback", "DataConfig", "EmaConfig", "LrSchedule", "ModelEMA", "OptimConfig", "RatioSampler",
    "SchedConfig", "TrainConfig", "Trainer", "ValConfig", "ValSet", "apply_overrides", "apply_values",
    "atomic_torch_save", "default_seed", "finetune_defaults", "find_resume_state", "flatten", "get_rng_state",
    "known_keys", "layer_id", "lineage_seeds", "load_recipe", "load_state", "param_groups", "parse_value",
    "plot_results", "seed_everything", "set_rng_state", "TENSORBOARD_HINT", "TensorBoardLog", "tensorboard_available",
    "train_sources", "val_set", "write_results_csv", "keypoint_set_values", "yolo_data",
]
