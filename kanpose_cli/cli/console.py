"""Rich output for the CLI: one stderr console for logs/progress (stdout stays clean), progress factory, tables."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

console = Console(stderr=True, highlight=False)
stdout = Console(highlight=False)


def make_progress(transient: bool = False) -> Progress:
    """Spinner, description, bar, M/N, elapsed, remaining, plus a free ``info`` field (fps, persons)."""
    return Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        console=console, transient=transient,
    )
