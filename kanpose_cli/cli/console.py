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


def frame_reporter(progress: Progress, task):
    """Per-frame callback ``(frame, persons)`` for predict/label: advances ``task`` with a running person count,
    and prints ``skipped PATH: reason`` when ``persons`` is None (the frame could not be read)."""
    total = {"persons": 0}

    def report(frame, persons: int | None) -> None:
        if persons is None:
            progress.console.print(f"[yellow]skipped[/] {frame.path}: {frame.error}")
        else:
            total["persons"] += persons
        progress.update(task, advance=1, info=f"{total['persons']} persons")

    return report
