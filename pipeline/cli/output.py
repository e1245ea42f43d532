"""How every command says it failed: one line on stderr, never a traceback, and the
exit code of pipeline/core/errors.py."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.core.config import ConfigError
from pipeline.core.errors import EXIT_USAGE, OperatorError


def error_console() -> Console:
    """stderr, never wrapped: a message stays one line whatever the terminal's width."""
    return Console(stderr=True, soft_wrap=True, highlight=False)


def say_error(console: Console, message: str, label: str = "error") -> None:
    console.print(f"[bold red]{label}:[/] {escape(message)}", soft_wrap=True, highlight=False)


def fail(console: Console, message: str, code: int = EXIT_USAGE) -> NoReturn:
    say_error(console, message)
    raise typer.Exit(code)


def one_of(option: str, value: str, valid: tuple[str, ...] | list[str], console: Console) -> None:
    """Refuse ``value`` unless it is one of ``valid``, listing them."""
    if value not in valid:
        fail(console, f"{option}: expected one of {', '.join(valid)}, got {value!r}")


def run_app(app: Callable[[], object], console: Console) -> None:
    """Run a typer app; configuration and operator errors end it with one line."""
    try:
        app()
    except ConfigError as exc:
        say_error(console, str(exc), "config error")
        sys.exit(EXIT_USAGE)
    except OperatorError as exc:
        say_error(console, str(exc))
        sys.exit(exc.exit_code)
