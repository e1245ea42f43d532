"""Every Grafana board, and the thin writer that puts them under ``dashboards/generated``.

Builders are pure (``build(config) -> dict``); ``render`` turns a board into the exact
text that is committed, and a unit test regenerates it and fails on any difference.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboards.boards import agents, operations, pipeline_health, quality, supervisor
from pipeline.core.config import Config

GENERATED_DIR = Path(__file__).resolve().parent / "generated"

Builder = Callable[[Config | None], dict[str, Any]]
# file stem -> builder; the stems are the generated file names.
BOARDS: dict[str, Builder] = {
    "supervisor-wallboard": supervisor.build,
    "operations": operations.build,
    "agents": agents.build,
    "pipeline-health": pipeline_health.build,
    "call-quality": quality.build,
}


def build_all(config: Config | None = None) -> dict[str, dict[str, Any]]:
    """Every board by file stem."""
    return {stem: builder(config) for stem, builder in BOARDS.items()}


def render(board: dict[str, Any]) -> str:
    """The committed text of one board: sorted keys, two-space indent, final newline."""
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(out: Path = GENERATED_DIR, config: Config | None = None) -> list[Path]:
    """Write every board to ``out/<stem>.json``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, board in build_all(config).items():
        path = out / f"{stem}.json"
        path.write_text(render(board), encoding="utf-8")
        written.append(path)
    return written
