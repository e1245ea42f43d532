"""The agent states are listed once, in pipeline.core.records; the SQL that repeats them
(it cannot import Python) must agree with that list."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.core.records import AGENT_STATES, LOGGED_IN_STATES, WORK_STATES

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
STATE_LIST = re.compile(r"\bstate\s+IN\s*\(([^)]*)\)", re.IGNORECASE)
STATE_ONE = re.compile(r"\bstate\s*(?:=|<>|!=)\s*'([^']*)'", re.IGNORECASE)
QUOTED = re.compile(r"'([^']*)'")


def _sql_texts() -> dict[str, str]:
    return {str(p.relative_to(SQL_DIR)): p.read_text(encoding="utf-8") for p in sorted(SQL_DIR.rglob("*.sql"))}


def test_state_literals_in_sql_are_known_states() -> None:
    seen = 0
    for name, text in _sql_texts().items():
        for state in STATE_ONE.findall(text):
            assert state in AGENT_STATES, f"{name}: unknown agent state {state!r}"
            seen += 1
        for body in STATE_LIST.findall(text):
            states = QUOTED.findall(body)
            assert states and set(states) <= set(AGENT_STATES), f"{name}: unknown agent state in {states}"
            seen += 1
    assert seen > 10  # the patterns do find the SQL's states


def test_sql_lists_of_the_timed_states_are_work_states() -> None:
    """A four-state list in SQL is the timed states: exactly WORK_STATES, in the same order."""
    lists = [(name, QUOTED.findall(body)) for name, text in _sql_texts().items() for body in STATE_LIST.findall(text)]
    four = [(name, states) for name, states in lists if len(states) == len(WORK_STATES)]
    assert len(four) >= 3
    for name, states in four:
        assert tuple(states) == WORK_STATES, name


def test_schema_comment_lists_every_state() -> None:
    lines = [line for text in _sql_texts().values() for line in text.splitlines()]
    comments = [line.split("--", 1)[1] for line in lines if re.match(r"\s*state\s+VARCHAR.*--", line)]
    assert comments
    for comment in comments:
        assert comment.split() == list(AGENT_STATES)


def test_derived_lists() -> None:
    assert LOGGED_IN_STATES == ("login", "ready", "not_ready", "busy", "wrap")
    assert set(WORK_STATES) == set(AGENT_STATES) - {"login", "logout"}
