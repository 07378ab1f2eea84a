"""Error -> exit-code mapping for every command (one red line, no traceback; ``KANPOSE_DEBUG=1`` shows it).

Exit codes: 0 ok; 1 run failed (incl. skipped inputs); 2 usage; 3 environment/weights/device; 130 interrupted.
"""

from __future__ import annotations

import functools
import os
import traceback

import click
import typer

from kanpose_cli.cli.console import console
from kanpose_cli.core.errors import KanposeError


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` and return the ``typer.Exit`` to raise."""
    console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func):
    """Decorator for command functions: maps kanpose errors to one line + exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (typer.Exit, click.exceptions.Exit, click.ClickException):
            raise
        except KanposeError as exc:
            if os.environ.get("KANPOSE_DEBUG"):
                traceback.print_exc()
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as exc:  # noqa: BLE001 - last resort: still one line, never a traceback unless asked
            if os.environ.get("KANPOSE_DEBUG"):
                traceback.print_exc()
            raise fail(f"{type(exc).__name__}: {exc} (set KANPOSE_DEBUG=1 for the traceback)", 1) from None

    return wrapper
