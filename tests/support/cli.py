"""Run the real `callpulse` command (this environment's console script) as a user does,
and check that a failure is said the way users are promised: one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

CALLPULSE = Path(sys.executable).with_name("callpulse")
PII_KEY = "cli-runner-test-key-0123456789"


def cli_env(**overrides: str) -> dict[str, str]:
    """The test process's environment with a PII key, plus ``overrides``."""
    return {**os.environ, "CALLPULSE_PII_KEY": PII_KEY, **overrides}


def callpulse(
    *args: str | os.PathLike[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``callpulse ARGS`` in ``cwd``; its exit code, stdout and stderr."""
    return subprocess.run(
        [str(CALLPULSE), *map(str, args)],
        cwd=cwd,
        env=dict(env) if env is not None else cli_env(),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
