"""callpulse's command line run in a child process, as a user runs it.

Tests get a ``Cli`` from the ``cli`` fixture (tests/conftest.py). Its environment carries a
PII key (the same one ``tests.helpers`` gives in-process engines, so a database written
by either hashes callers alike); ``without(...)`` drops variables to test what happens
when they are missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypedDict, Unpack

from tests.helpers import PII_KEY

MAIN = "pipeline.cli"
ANALYST = "pipeline.cli.analyst"


def _default_env() -> dict[str, str]:
    return {**os.environ, "CALLPULSE_PII_KEY": PII_KEY.decode()}


class RunOptions(TypedDict, total=False):
    cwd: Path | None
    stdin: str | None
    timeout: float


@dataclass(frozen=True)
class Cli:
    """Runs ``python -m <module> <args>``: ``callpulse`` itself, or ``.analyst`` for the
    analysts' command."""

    env: Mapping[str, str] = field(default_factory=_default_env)
    module: str = MAIN

    @property
    def analyst(self) -> Cli:
        return replace(self, module=ANALYST)

    def argv(self, *args: str | os.PathLike[str]) -> list[str]:
        return [sys.executable, "-m", self.module, *(os.fspath(a) for a in args)]

    def __call__(
        self,
        *args: str | os.PathLike[str],
        cwd: Path | None = None,
        stdin: str | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run to the end and return the outcome, whatever the exit code."""
        return subprocess.run(
            self.argv(*args),
            cwd=cwd,
            env=dict(self.env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str | os.PathLike[str], **options: Unpack[RunOptions]) -> subprocess.CompletedProcess[str]:
        """Run to the end; fail the test unless it exits 0 without a traceback."""
        done = self(*args, **options)
        assert done.returncode == 0, f"{' '.join(done.args)} exited {done.returncode}:\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def popen(
        self, *args: str | os.PathLike[str], cwd: Path | None = None, stdin: bool = False
    ) -> subprocess.Popen[str]:
        """Start without waiting (the caller waits, or kills it); output is piped."""
        return subprocess.Popen(
            self.argv(*args),
            cwd=cwd,
            env=dict(self.env),
            text=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def without(self, *names: str) -> Cli:
        """The same runner with these environment variables unset."""
        return replace(self, env={k: v for k, v in self.env.items() if k not in names})
