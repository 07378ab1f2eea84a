"""``kanpose models``: the registered pose models with input size, parameters, GMACs and weights status."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from kanpose_cli.cli.console import stdout
from kanpose_cli.cli.errors import handle_errors

EPILOG = "Examples:  kanpose models  ·  kanpose models amfacpose  ·  kanpose models --json"


@handle_errors
def models(
    pattern: Annotated[Optional[str], typer.Argument(help="Only models whose name contains this text.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Add the description column.")] = False,
):
    """List pose models: input size, parameters, GMACs and whether trained weights ship.

    GMACs are multiply-accumulates (what the papers call GFLOPs) of one forward pass at the model's input size,
    counted with torch.utils.flop_counter, attention included.
    """
    import json  # noqa: PLC0415

    from kanpose_cli.core.models.info import model_rows  # noqa: PLC0415

    rows = model_rows(pattern)
    if as_json:
        stdout.print_json(json.dumps(rows))
        return
    table = Table(title="kanpose pose models (GMACs = multiply-accumulates)")
    for col, just in [("model", "left"), ("input", "right"), ("params M", "right"), ("GMACs", "right"),
                      ("paper M/G/AP", "right"), ("weights", "left")] + ([("description", "left")] if wide else []):
        table.add_column(col, justify=just, no_wrap=col != "description")
    for r in rows:
        p = r["paper"]
        paper = "/".join(f"{p[k]}" if k in p else "–" for k in ("params_m", "gflops", "ap")) if p else "–"
        table.add_row(r["model"], f"{r['input_size'][0]}×{r['input_size'][1]}", f"{r['params'] / 1e6:.2f}",
                      f"{r['macs'] / 1e9:.2f}", paper, r["weights"], *([r["description"]] if wide else []))
    stdout.print(table)
