"""Turn a training run into shipped weights: an fp16 safetensors file in ``weights/`` whose metadata carries the
training provenance and the accuracy measured on the shipped file itself, plus the loss / val-AP curves as a PNG.

Usage (maintainers; needs ``../shared/data``)::

    python tools/ship_weights.py --name amfacpose-r18-128x96-cocolsp \
        [--previous weights/amfacpose-r18-128x96-cocolsp.safetensors] \
        --run runs/train/exp1 --run runs/train/exp2 [--checkpoint best|last] [--note "..."]

The last ``--run`` provides the weights (``weights/{best,last}.safetensors``); every run's ``results.csv`` goes into
the curves, one after the other (phases of one training), and into the provenance (``"history"`` of each phase).
``--previous`` names an earlier shipped file whose phases come first (its run folders need not exist any more):
its phases' provenance is kept as it is, and their histories, where it stored them, are drawn too.

Accuracy is COCO keypoint AP on coco-mini val2017 with flip test, measured on the fp16 file as loaded back: with
ground-truth person boxes, and with the default YOLO11n-pose person detector at the evaluator's default box threshold.
The figures are stored in the checkpoint's provenance under ``"accuracy"``; ``tests/test_shipped_weights.py`` checks
them against a fresh evaluation and the model card.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kanpose_cli.core.evaluation.evaluator import evaluate_model  # noqa: E402
from kanpose_cli.core.paths import keep_third_party_files_in_cache  # noqa: E402
from kanpose_cli.core.weights import load_checkpoint, read_model_card, save_checkpoint  # noqa: E402

COCO_MINI = REPO.parent / "shared" / "data" / "coco-mini"
VAL_ANN = COCO_MINI / "annotations" / "person_keypoints_val2017.json"
VAL_IMAGES = COCO_MINI / "val2017"
METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR")
HISTORY_KEYS = ("epoch", "train_loss", "AP", "lr", "time_s")  # the results.csv columns kept in the provenance


def read_history(run: Path) -> list[dict]:
    """The rows of ``run/results.csv`` (one per epoch) as ``{column: float}``, empty cells left out."""
    with open(run / "results.csv") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def plot_curves(phases: list[tuple[str, list[dict], int]], path: Path) -> None:
    """Train loss and val AP per epoch, phases ``(name, history, epochs)`` one after the other on a global epoch
    axis; a phase without a history (an earlier shipped file that did not store it) only moves the axis on."""
    keep_third_party_files_in_cache()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    offset = 0
    for name, hist, epochs in phases:
        if not hist:
            offset += epochs
            continue
        ep = [offset + r["epoch"] for r in hist]
        a1.plot(ep, [r["train_loss"] for r in hist], marker=".", label=name)
        pts = [(offset + r["epoch"], r["AP"]) for r in hist if "AP" in r]
        if pts:
            a2.plot(*zip(*pts), marker="o", label=f"{name}: AP")
        offset = ep[-1] if ep else offset
    a1.set_xlabel("epoch")
    a1.set_ylabel("train loss (KL, SimCC)")
    a1.set_title("training loss")
    a1.legend()
    a2.set_xlabel("epoch")
    a2.set_ylabel("COCO keypoint AP")
    a2.set_title("coco-mini val2017, GT boxes, flip")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True, help="file stem in weights/ (no extension)")
    ap.add_argument("--previous", type=Path, help="an earlier shipped file whose phases come before the runs")
    ap.add_argument("--run", action="append", type=Path, required=True, help="run folder(s), in training order")
    ap.add_argument("--checkpoint", default="best", choices=("best", "last"))
    ap.add_argument("--note", default="", help="free text stored in the provenance (e.g. the licence)")
    args = ap.parse_args()
    if args.previous and not args.previous.is_file():
        ap.error(f"--previous: no such file: {args.previous}")

    src = args.run[-1] / "weights" / f"{args.checkpoint}.safetensors"
    out = REPO / "weights" / f"{args.name}.safetensors"
    card = read_model_card(src)
    phases = list((read_model_card(args.previous).provenance or {}).get("phases") or []) if args.previous else []
    for run in args.run:
        prov = read_model_card(run / "weights" / "last.safetensors").provenance or {}
        history = [{k: round(r[k], 6) for k in HISTORY_KEYS if k in r} for r in read_history(run)]
        phases.append({"run": run.name, "data": prov.get("data"), "epochs": prov.get("epochs_trained"),
                       "steps": prov.get("steps"), "batch": prov.get("batch_per_process"),
                       "device": prov.get("device"), "wall_time_s": prov.get("wall_time_s"),
                       "config": prov.get("config"), "seeds_before": prov.get("seeds_before"),
                       "init": prov.get("init"), "torch": prov.get("torch"),
                       "history": history})
    provenance = {"trained_with": "kanpose train", "phases": phases, "source_checkpoint": f"{args.run[-1].name}/"
                  f"{args.checkpoint}", "source_val_metrics": (card.provenance or {}).get("val_metrics_gt_boxes"),
                  "note": args.note, "shipped": time.strftime("%Y-%m-%d")}
    model = load_checkpoint(src)
    save_checkpoint(model, out, provenance, half=True)
    shipped = load_checkpoint(out)  # measure the fp16 file as users load it
    accuracy = {"dataset": "coco-mini val2017 (79 images, 68 persons)", "flip": True}
    for boxes in ("gt", "detector"):
        t0 = time.time()
        m = evaluate_model(shipped, VAL_ANN, VAL_IMAGES, boxes=boxes, flip=True)
        accuracy[boxes] = {k: round(float(m[k]), 4) for k in METRICS}
        print(f"{boxes}: {accuracy[boxes]} ({time.time() - t0:.0f} s)", flush=True)
    provenance["accuracy"] = accuracy
    save_checkpoint(shipped, out, provenance, half=True)
    plot_curves([(p["run"], p.get("history") or [], p.get("epochs") or 0) for p in phases],
                out.with_name(f"{args.name}-curves.png"))
    print(json.dumps({"weights": str(out), "bytes": out.stat().st_size, "accuracy": accuracy}, indent=1))


if __name__ == "__main__":
    main()
