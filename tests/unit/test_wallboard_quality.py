"""The wallboard's poor-quality tile: the share of the window's calls with quality that
sounded poor, judged against the queue's target on at least min_calls such calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dashboards import wallboard
from metrics.kpi.snapshot import take_snapshot
from pipeline.core.config import config_from_dict
from tests.helpers import engine, feed


def offered(cid: str, queue: str, minute: int) -> dict[str, Any]:
    return {"type": "call", "event": "offered", "call_id": cid, "queue": queue, "at": f"2026-03-02T09:{minute:02d}:00Z"}


def q(cid: str, mos: float) -> dict[str, Any]:
    return {"type": "quality", "call_id": cid, "leg": "a", "direction": "in", "at": "2026-03-02T09:40:00Z", "mos": mos}


def test_quality_tile_by_hand() -> None:
    cfg = config_from_dict({"defaults": {"min_calls": 4}})
    eng = engine(config=cfg)
    records = [
        # billing: 5 calls with quality in the 15m window (09:25:00-09:40:00), 2 poor: 40 % > 10 %
        *(offered(f"b{i}", "billing", 30 + i) for i in range(5)),
        *(q(f"b{i}", 3.0 if i < 2 else 4.2) for i in range(5)),
        # b9 was offered before the window: not counted
        offered("b9", "billing", 10),
        q("b9", 2.0),
        # sales: 2 calls, both poor, under min_calls 4: no verdict, and the reason why
        offered("s1", "sales", 31),
        offered("s2", "sales", 32),
        q("s1", 2.5),
        q("s2", 2.5),
        # support: calls, no quality
        offered("p1", "support", 33),
    ]
    feed(eng, records)
    con = eng.store.con
    snap = take_snapshot(con, cfg.windows)
    lists = wallboard.read_lists(con, snap.watermark, None, 900)
    doc = wallboard.wallboard_json(
        snap,
        lists.waiting,
        lists.abandoned,
        lists.agents,
        "UTC",
        "15m",
        datetime(2026, 3, 2, 9, 41, tzinfo=UTC),
        quality=lists.quality,
    )
    tiles = {x["queue"]: x["tiles"]["poor_quality"] for x in doc["queues"]}
    assert tiles["billing"] == {
        "label": "Poor calls 15m", "value": 2 / 5, "unit": "ratio", "target": 0.10,
        "higher_is_better": False, "status": "breach",
    }  # fmt: skip
    assert (tiles["sales"]["value"], tiles["sales"]["status"]) == (1.0, "none")
    assert tiles["sales"]["why"] == "fewer than 4 calls"
    assert (tiles["support"]["value"], tiles["support"]["status"]) == (None, "none")
    assert list(doc["queues"][0]["tiles"])[-1] == "poor_quality"  # the last tile of a queue's row
