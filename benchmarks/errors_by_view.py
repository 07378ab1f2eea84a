"""Which people does a model invert or miss? The keypoint error classes of ``kanpose eval coco --analyze``, split by
how the person is seen.

For every detection that the diagnosis matched to a ground-truth person (Ronchi & Perona's matching, as
``--analyze``), the limb keypoints (COCO-17 shoulders to ankles, labelled in the ground truth) are counted per class
(good, jitter, inversion, swap, miss) in groups of persons:

- ``face labelled``: the nose is labelled (v > 0): a person seen from the front or the side;
- ``no nose``: the nose is not labelled but a shoulder is: mostly people seen from behind (or with the head cut off);
- ``small`` / ``medium`` / ``large``: COCO's area ranges (< 32², 32²–96², > 96² pixels²);

and each limb keypoint's inversion and miss shares over all matched persons. Inputs are evaluated run folders of
``kanpose eval coco`` (their results file and the annotation file named in ``metrics.json``), so two models are read
on exactly the persons each was scored on:

    python benchmarks/errors_by_view.py runs/eval/exp1 runs/eval/exp2 [--json out.json]

COCO-17 only (the grouping uses the nose and the limb joints by name).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

LIMBS = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
         "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")


def group_of(match, nose: int, shoulders: tuple[int, int]) -> str | None:
    """``"face labelled"``, ``"no nose"`` (a shoulder labelled, the nose not) or None (neither)."""
    if match.gt_vis[nose] > 0:
        return "face labelled"
    return "no nose" if (match.gt_vis[list(shoulders)] > 0).any() else None


def errors_by_view(analysis) -> dict:
    """Counts of the limb keypoints' classes per group of persons and per limb keypoint.

    Args:
        analysis: an :class:`~kanpose_cli.core.evaluation.analysis_types.Analysis` of COCO-17 results.

    Returns:
        ``{"groups": {group: {"persons", "labelled", class: count, ...}}, "per_keypoint": {name: {"labelled",
        class: count}}}``; classes are those of :data:`~kanpose_cli.core.evaluation.analysis_types.CLASSES`.
    """
    from kanpose_cli.core.evaluation.analysis_types import CLASSES

    names = list(analysis.keypoint_set.names)
    limb_ids = np.array([names.index(n) for n in LIMBS])
    nose, shoulders = names.index("nose"), (names.index("left_shoulder"), names.index("right_shoulder"))
    groups: dict[str, dict] = {}
    per_kp = {n: {"labelled": 0, **{c: 0 for c in CLASSES}} for n in LIMBS}
    for m in analysis.matches:
        classes = m.classes[limb_ids]
        labelled = classes >= 0
        for key in ("all", group_of(m, nose, shoulders), m.size):
            if key is None:
                continue
            g = groups.setdefault(key, {"persons": 0, "labelled": 0, **{c: 0 for c in CLASSES}})
            g["persons"] += 1
            g["labelled"] += int(labelled.sum())
            for code, c in enumerate(CLASSES):
                g[c] += int((classes == code).sum())
        for name, code in zip(LIMBS, classes, strict=True):
            if code >= 0:
                per_kp[name]["labelled"] += 1
                per_kp[name][CLASSES[code]] += 1
    return {"groups": groups, "per_keypoint": per_kp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="evaluated run folders of `kanpose eval coco`")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from kanpose_cli.core.data.coco import quiet_coco
    from kanpose_cli.core.errors import KanposeError
    from kanpose_cli.core.evaluation.analysis import (analyze, evaluated_image_ids, load_run, run_results_file,
                                                      run_settings)

    console = Console()
    out = {}
    try:
        for run_dir in args.runs:
            run = load_run(run_dir)
            settings = run_settings(run["metrics"])
            results = run_results_file(run["dir"], run["metrics"])
            if results is None or not settings.get("ann_file") or not Path(settings["ann_file"]).is_file():
                raise KanposeError(f"{run_dir}: needs its results file and the annotation file its metrics.json names")
            coco = quiet_coco(settings["ann_file"])
            selected = None if settings.get("image_ids", "all") == "all" else settings["image_ids"]
            ids = evaluated_image_ids(coco, selected, [s.get("path") for s in run["metrics"].get("skipped", [])])
            out[str(run_dir)] = counts = errors_by_view(analyze(coco, results, image_ids=ids))
            table = Table(title=f"{run_dir} · {settings.get('model', '')} · limb keypoints of matched persons, % "
                          "of labelled", title_justify="left")
            for col in ("persons", "group", "limb kpts", "good", "jitter", "inversion", "swap", "miss"):
                table.add_column(col, justify="left" if col == "group" else "right")
            for key in ("all", "face labelled", "no nose", "small", "medium", "large"):
                g = counts["groups"].get(key)
                if not g or not g["labelled"]:
                    continue
                pct = [f"{100 * g[c] / g['labelled']:.1f}" for c in ("good", "jitter", "inversion", "swap", "miss")]
                table.add_row(str(g["persons"]), key, str(g["labelled"]), *pct)
            console.print(table)
            kp = Table(title="per limb keypoint, % of labelled", title_justify="left")
            for col in ("keypoint", "labelled", "inversion", "miss"):
                kp.add_column(col, justify="left" if col == "keypoint" else "right")
            for name, c in counts["per_keypoint"].items():
                if c["labelled"]:
                    kp.add_row(name, str(c["labelled"]), f"{100 * c['inversion'] / c['labelled']:.1f}",
                               f"{100 * c['miss'] / c['labelled']:.1f}")
            console.print(kp)
    except (KanposeError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(1)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
