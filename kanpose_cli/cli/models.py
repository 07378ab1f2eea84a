"""``kanpose models``: the registered pose models with input size, parameters, GMACs and weights status."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from kanpose_cli.cli.console import make_progress, print_csv, print_json, print_table
from kanpose_cli.cli.errors import fail, handle_errors

EPILOG = ("Examples:  kanpose models  ·  kanpose models amfacpose  ·  kanpose models 'vitpose-*'  ·  "
          "kanpose models --format json  ·  kanpose models vitpose --format csv > models.csv")


class Format(str, Enum):
    """Output formats of ``kanpose models``."""

    table = "table"
    json = "json"
    csv = "csv"


@handle_errors
def models(
    pattern: Annotated[Optional[str], typer.Argument(
        help="Only models whose name contains this text, or matches this shell pattern ('vitpose-*').")] = None,
    fmt: Annotated[Format, typer.Option(
        "--format", help="table (for people), json (the full records) or csv (one flat row per model).",
        case_sensitive=False)] = Format.table,
    wide: Annotated[bool, typer.Option("--wide", help="Add the description column to the table.")] = False,
):
    """List pose models: input size, parameters, GMACs, shipped weights and published weights (hub).

    GMACs are multiply-accumulates (what the papers call GFLOPs) of one forward pass at the model's input size,
    counted as in core/models/complexity.py (attention by kanpose's own rule), the same on every torch. json and
    csv give the exact counts (params, macs). The hub column lists the published weights a model loads with
    --weights hub[:TAG] (tag and the COCO AP their authors report; the first is the default); json gives their
    repository, revision, file, SHA-256 and licence. AP is a fraction (0.758) here as in every kanpose output.
    """
    from kanpose_cli.core.models.info import hub_summary, model_complexity, model_rows, pending_complexity
    from kanpose_cli.core.models.registry import list_models

    # Params/MACs are shipped; only models the shipped table lacks (plug-ins, changed configs) are built and counted,
    # once (then cached), with a progress bar: that can take a minute for a big ViT on a CPU.
    pending = pending_complexity(list_models(pattern=pattern))
    if pending:
        with make_progress(transient=True) as progress:
            task = progress.add_task("counting params/MACs", total=len(pending), info="")
            for name in pending:
                progress.update(task, info=name)
                model_complexity(name)
                progress.advance(task)
    rows = model_rows(pattern)
    if not rows:
        what = "matches" if any(c in pattern for c in "*?[") else "contains"
        raise fail(f"no model name {what} {pattern!r}; `kanpose models` lists them all", 2)
    if fmt is Format.json:
        print_json(rows)
        return
    if fmt is Format.csv:
        print_csv([{"model": r["model"], "family": r["family"], "input_h": r["input_size"][0],
                    "input_w": r["input_size"][1], "params": r["params"], "macs": r["macs"],
                    **{f"paper_{k}": (r["paper"] or {}).get(k, "") for k in ("params_m", "gflops", "ap")},
                    "weights": r["weights"], "hub": " ".join(f"{w['tag']}={w['uri']}" for w in r["hub"]),
                    "init_from": r["init_from"] or "", "description": r["description"]} for r in rows])
        return
    table = Table(title="kanpose pose models (GMACs = multiply-accumulates)")
    columns = [("model", "left"), ("input", "right"), ("params M", "right"), ("GMACs", "right"),
               ("paper M/G/AP", "right"), ("weights", "left"), ("hub (tag AP)", "left")]
    for col, just in columns + ([("description", "left")] if wide else []):
        table.add_column(col, justify=just, no_wrap=col != "description")
    for r in rows:
        p = r["paper"]
        paper = "/".join(("–" if k not in p else f"{p[k]:.3f}" if k == "ap" else f"{p[k]}")
                         for k in ("params_m", "gflops", "ap")) if p else "–"
        table.add_row(r["model"], f"{r['input_size'][0]}×{r['input_size'][1]}", f"{r['params'] / 1e6:.2f}",
                      f"{r['macs'] / 1e9:.2f}", paper, r["weights"], hub_summary(r["model"]),
                      *([r["description"]] if wide else []))
    print_table(table)
