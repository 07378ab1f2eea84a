"""Rich output for the CLI: one stderr console for logs/progress (stdout stays clean), progress factory, tables,
and plain JSON/CSV for machine-readable output."""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from kanpose_cli.core.text import plural



def _soft_wrap(stream) -> bool:
    """True when ``stream`` is not a terminal and ``$COLUMNS`` is not set: a pipe or a file then gets each message
    as one line (rich would otherwise hard-wrap it at 80 columns, even inside a path). A terminal, or an explicit
    ``COLUMNS``, keeps rich's wrapping at that width."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):
        tty = False
    return not tty and not os.environ.get("COLUMNS")


console = Console(stderr=True, highlight=False, soft_wrap=_soft_wrap(sys.stderr))
stdout = Console(highlight=False, soft_wrap=_soft_wrap(sys.stdout))


def make_progress(transient: bool = False) -> Progress:
    """Spinner, description, bar, M/N, elapsed, remaining, plus a free ``info`` field (fps, persons)."""
    return Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        console=console, transient=transient,
    )


def frame_reporter(progress: Progress, task, noun: str = "person"):
    """Per-frame callback ``(frame, persons)`` for predict/label: advances ``task`` with a running count of
    ``noun`` (e.g. ``swapped person``), and prints ``skipped PATH: reason`` when ``persons`` is None (the frame
    could not be read)."""
    total = {"persons": 0}

    def report(frame, persons: int | None) -> None:
        if persons is None:
            # soft_wrap: one line per skipped file however long its path (a log piped to a file or grep stays whole)
            progress.console.print(f"[yellow]skipped[/] {frame.path}: {frame.error}", soft_wrap=True)
        else:
            total["persons"] += persons
        progress.update(task, advance=1, info=plural(total["persons"], noun))

    return report


def print_table(table, target: Console | None = None) -> None:
    """Print a rich table (or grid) with every cell in full.

    Rich fits a table to the console width and cuts the cells that do not fit to ``…``; a pipe or a file counts as
    80 columns (or ``$COLUMNS``). So when the table's natural width is more than the console's, it is printed at
    its natural width instead (colours and styles as the console would use them). ``target``: default stdout.
    """
    target = target or stdout
    needed = target.measure(table, options=target.options.update_width(100_000)).maximum
    if needed <= target.width:
        target.print(table)
        return
    wide = Console(file=target.file, width=needed, highlight=False, color_system=target.color_system,
                   force_terminal=target.is_terminal, no_color=target.no_color, legacy_windows=False)
    wide.print(table)


def print_json(data) -> None:
    """Print ``data`` as plain indented JSON on stdout (no colours, no wrapping: for machines and pipes)."""
    typer.echo(json.dumps(data, indent=1, ensure_ascii=False, default=str))


def print_csv(rows: list[dict]) -> None:
    """Print ``rows`` (flat dicts, same keys) as CSV with a header line on stdout; nothing for no rows."""
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    typer.echo(buf.getvalue(), nl=False)
