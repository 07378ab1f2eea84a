"""Print the core's notes (:func:`kanpose_cli.core.logs.note`) as ``note: …`` lines on the CLI's stderr console."""

from __future__ import annotations

import logging

from kanpose_cli.core.logs import NOTES_LOGGER


class _ConsoleNotes(logging.Handler):
    """Logging handler: each record of the ``kanpose.notes`` logger becomes one dim ``note:`` line."""

    def emit(self, record: logging.LogRecord) -> None:
        from kanpose_cli.cli.console import console

        try:
            console.print(f"[dim]note:[/] {record.getMessage()}", soft_wrap=True, highlight=False)
        except Exception:  # noqa: BLE001 - a note must never stop a command
            self.handleError(record)


def show_notes() -> None:
    """Route the core's notes to the console (idempotent: one handler however often the app is invoked)."""
    logger = logging.getLogger(NOTES_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(isinstance(h, _ConsoleNotes) for h in logger.handlers):
        logger.addHandler(_ConsoleNotes())
