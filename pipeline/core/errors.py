"""Failures an operator can fix, said in one line, and the exit codes the CLI gives them.

Any layer raises ``OperatorError`` (or a subclass) with the whole message a user needs:
what happened and what to do. The CLI prints it as one line and exits with its
``exit_code``; it never shows a traceback for one.
"""

from __future__ import annotations

EXIT_FAILED = 1  # the command ran but its result is a failure (every record dead-lettered)
EXIT_USAGE = 2  # a mistake in the command, its files or the configuration
EXIT_UNAVAILABLE = 69  # a service (Kafka, Grafana) could not be reached (sysexits EX_UNAVAILABLE)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class OperatorError(RuntimeError):
    """A problem shown as one line without a traceback; ``exit_code`` for the process."""

    exit_code = EXIT_USAGE


class ServiceUnavailable(OperatorError):
    """A service the command needs (Kafka, Grafana) did not answer."""

    exit_code = EXIT_UNAVAILABLE


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (DuckDB and clients add hints below it)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def not_a_directory(path: object, what: str) -> None:
    """Refuse a directory where a file is expected (``what``: the option or argument)."""
    from pathlib import Path

    if Path(str(path)).is_dir():
        raise OperatorError(f"{path}: is a directory; {what} must be a file")
