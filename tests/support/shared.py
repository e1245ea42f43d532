"""The shared material beside the checkout (``../shared``): the bank month, the Grafana schema.

Looked up in ``$CALLPULSE_SHARED``, then ``../shared`` beside the repository, then
``/work/shared``. A test that needs a missing file fails and says where it looked; it
never skips (a skipped test would pass CI without checking anything).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bases() -> list[Path]:
    env = os.environ.get("CALLPULSE_SHARED")
    return ([Path(env)] if env else []) + [ROOT.parent / "shared", Path("/work/shared")]


def shared_file(*parts: str) -> Path:
    """The first existing ``<base>/<parts>``, else where it should be beside the checkout."""
    for base in _bases():
        path = base.joinpath(*parts)
        if path.exists():
            return path
    return (ROOT.parent / "shared").joinpath(*parts)


def need(path: Path) -> Path:
    """``path`` if it exists; otherwise fail the test, naming the places looked in."""
    if not path.exists():
        looked = ", ".join(str(b) for b in _bases())
        pytest.fail(f"{path.name}: shared test material not found (looked in {looked}; set CALLPULSE_SHARED)")
    return path
