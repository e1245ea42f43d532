"""The `callpulse` command's entry point, kept free of imports: Ctrl-C while the
command's modules load (a few seconds on a busy machine) ends it quietly with 130,
like Ctrl-C later on, instead of a traceback from the middle of an import."""

from __future__ import annotations

import os
import signal

from pipeline.core.errors import EXIT_INTERRUPTED


def _interrupted_while_loading(signum: int, frame: object) -> None:
    os._exit(EXIT_INTERRUPTED)  # nothing is open yet: there is nothing to close


def main() -> None:
    signal.signal(signal.SIGINT, _interrupted_while_loading)
    from pipeline.cli.main import main as run

    signal.signal(signal.SIGINT, signal.default_int_handler)
    run()
