"""The logs of a run: ``results.csv`` (one row per epoch), ``results.png`` (loss and validation AP per epoch) and,
with the optional ``tensorboard`` extra (``pip install 'kanpose[tensorboard]'``), TensorBoard event files in the run
folder (``tensorboard --logdir runs/train``): ``train/loss`` and ``train/lr`` per optimiser step, every numeric
``results.csv`` column as ``epoch/<column>`` per epoch (``epoch/AP``, ``epoch/train_loss`` ...)."""

from __future__ import annotations

import csv
from pathlib import Path

from kanpose_cli.core.io import atomic_path
from kanpose_cli.core.paths import keep_third_party_files_in_cache


TENSORBOARD_HINT = "pip install 'kanpose[tensorboard]'"


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can write event files (the ``tensorboard`` package is installed)."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLog:
    """TensorBoard scalars of a training run (``torch.utils.tensorboard.SummaryWriter`` into ``log_dir``).

    Args:
        log_dir: the run folder (event files ``events.out.tfevents.*`` go there; a resumed run adds a new file).

    Raises:
        ImportError: tensorboard is not installed (check :func:`tensorboard_available` first).
    """

    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def step(self, step: int, loss: float, lr: float) -> None:
        """``train/loss`` and ``train/lr`` (the base lr, before per-group scales) at optimiser step ``step``."""
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/lr", lr, step)

    def epoch(self, row: dict) -> None:
        """Every numeric value of a ``results.csv`` row as ``epoch/<key>`` at x = ``row["epoch"]``; flushed."""
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"epoch/{key}", value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def write_results_csv(history: list[dict], path: Path) -> None:
    """One row per epoch (the union of the rows' keys as columns, in first-seen order), written atomically."""
    keys: list[str] = []
    for r in history:
        keys += [k for k in r if k not in keys]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in history:
            w.writerow(r)


def plot_results(history: list[dict], path: Path) -> None:
    """PNG with the training loss and the validation AP/AP50 per epoch (matplotlib, Agg backend).

    ``history`` rows need ``epoch`` and ``train_loss``; ``AP``/``AP50`` are plotted where present.
    """
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
