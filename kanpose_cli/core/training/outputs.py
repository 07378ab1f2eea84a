"""The per-epoch logs of a run: ``results.csv`` and ``results.png``."""

from __future__ import annotations

import csv
from pathlib import Path

from kanpose_cli.core.io import atomic_path
from kanpose_cli.core.paths import keep_third_party_files_in_cache


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
