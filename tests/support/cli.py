"""callpulse's command line run in a child process, as a user runs it, and checks that a
failure is said the way users are promised: one line, no traceback.

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

from tests import helpers

PII_KEY = helpers.PII_KEY.decode()
MAIN = "pipeline.cli"
ANALYST = "pipeline.cli.analyst"
CALLPULSE = Path(sys.executable).with_name("callpulse")
"""This environment's console script: the entry point a user's shell runs."""


def cli_env(**overrides: str) -> dict[str, str]:
    """The test process's environment with the tests' PII key, plus ``overrides``."""
    return {**os.environ, "CALLPULSE_PII_KEY": PII_KEY, **overrides}


class RunOptions(TypedDict, total=False):
    cwd: Path | None
    stdin: str | None
    timeout: float


@dataclass(frozen=True)
class Cli:
    """Runs ``python -m <module> <args>``: ``callpulse`` itself, or ``.analyst`` for the
    analysts' command."""

    env: Mapping[str, str] = field(default_factory=cli_env)
    module: str | None = MAIN  # None: the console script

    @property
    def analyst(self) -> Cli:
        return replace(self, module=ANALYST)

    def argv(self, *args: str | os.PathLike[str]) -> list[str]:
        command = [str(CALLPULSE)] if self.module is None else [sys.executable, "-m", self.module]
        return [*command, *(os.fspath(a) for a in args)]

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
            stdin=None if stdin is not None else subprocess.DEVNULL,
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


def callpulse(
    *args: str | os.PathLike[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``callpulse ARGS`` through the console script, in ``cwd``."""
    runner = Cli(env=env if env is not None else cli_env(), module=None)
    return runner(*args, cwd=cwd, stdin=stdin, timeout=timeout)


def stderr_lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The non-blank lines a run wrote to stderr; fails on any traceback."""
    assert "Traceback" not in run.stderr and "Error ─" not in run.stderr, run.stderr
    return [line for line in run.stderr.splitlines() if line.strip()]


def one_error(run: subprocess.CompletedProcess[str], code: int, after: str | None = None) -> str:
    """The one line a failed run wrote to stderr (checked: exit ``code``, one line, no
    traceback); ``after``: the start of an information line the command prints first."""
    lines = stderr_lines(run)
    assert run.returncode == code, f"exit {run.returncode}, expected {code}: {run.stderr}"
    if after is not None and lines and lines[0].startswith(after):
        lines = lines[1:]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{run.stderr}"
    return lines[0]


def replay_from_stdin(db: Path, batch_size: int, cwd: Path) -> subprocess.Popen[str]:
    """``callpulse replay -`` through the console script: a pipeline that stays up while its
    standard input (piped, as are its outputs) stays open."""
    return Cli(module=None).popen("replay", "-", "--db", db, "--batch-size", str(batch_size), cwd=cwd, stdin=True)
