"""A mixed input, as a centre's sources really deliver it: live call events and CDRs of
the same calls, calls known only from their CDR (which arrives after the call, so it
reaches back before the watermark), re-delivered records, calls transferred between
queues, agents on several queues, times written in three site time zones, and waits
exactly on the service-level and short-abandon thresholds.

Built from the simulator (a seed gives the same records every time); the records come
in file order: event time, each CDR shortly after its call ended, each re-delivery a
little after its original. ``partitions`` splits them as Kafka would (calls and CDRs by
queue, agents by agent, QA by call), each partition keeping file order.
"""

from __future__ import annotations

import random
import zlib
from collections import defaultdict
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.ingest.sources.simulator import SimConfig, Understaffing, simulate

ZONES = (ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/London"), ZoneInfo("America/New_York"))
TIME_FIELDS = ("at", "offered_at", "answered_at", "ended_at")
SL_THRESHOLD_S = 15  # the defaults of Config (DESIGN.md)
SHORT_ABANDON_S = 5
OUTCOMES = ("answered", "abandoned", "exited")
Record = dict[str, Any]


def _h(text: str) -> int:
    return zlib.crc32(text.encode())


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def mixed_records(seed: int = 5, scale: float = 0.1, close: time = time(9, 30)) -> list[Record]:
    """The mixed input (see the module docstring), in file order."""
    sim = SimConfig(
        seed=seed,
        scale=scale,
        close_time=close,
        understaffing=(Understaffing("billing", time(8, 30), time(9, 0), 0.6),),
    )
    records = list(simulate(sim))
    rng = random.Random(seed)
    queues = sorted({r["queue"] for r in records if r["type"] == "call"})
    calls: dict[tuple[str, str], dict[str, Record]] = defaultdict(dict)
    for r in records:
        if r["type"] == "call":
            calls[(r["call_id"], r["queue"])][r["event"]] = r
    _fractions(calls, rng)
    _on_thresholds(calls)
    for r in records:
        if r["type"] == "agent" and r["state"] == "login" and _h(r["agent_id"]) % 3 == 0:
            r["queues"] = sorted({*r.get("queues", []), *rng.sample(queues, 2)})

    # (sort key, record): a CDR sorts just after its call's last event, plus a delay
    keyed: list[tuple[datetime, int, Record]] = []
    cdr_only = {k for k in calls if _h(k[0]) % 10 == 0}
    with_cdr = {k for k in calls if _h(k[0]) % 10 in (1, 2)}
    for i, r in enumerate(records):
        if r["type"] == "call" and (r["call_id"], r["queue"]) in cdr_only:
            continue
        keyed.append((_t(r["at"]), i, r))
    n = len(records)
    for j, key in enumerate(sorted(cdr_only | with_cdr)):
        cdr = _cdr(calls[key])
        if cdr is not None:
            keyed.append((_t(cdr["ended_at"]) + timedelta(seconds=rng.randint(5, 180)), n + j, cdr))
    keyed.sort(key=lambda x: (x[0], x[1]))
    out = [dict(r) for _, _, r in keyed]
    for i in sorted(rng.sample(range(len(out)), len(out) // 30), reverse=True):  # re-delivered
        out.insert(min(len(out), i + rng.randint(1, 300)), dict(out[i]))
    return [_zoned(r) for r in out]


# sub-second offsets by event kind, so that a call's events keep their order within a second
FRACTION_US = {"offered": (0, 299_999), "answered": (400_000, 699_999), "abandoned": (400_000, 699_999),
               "exited": (400_000, 699_999), "ended": (800_000, 999_999), "transferred": (800_000, 999_999)}  # fmt: skip


def _fractions(calls: dict[tuple[str, str], dict[str, Record]], rng: random.Random) -> None:
    """Times to the microsecond and durations to the millisecond (a sum of such DOUBLEs
    depends on the order it is added in; whole seconds would hide that)."""
    for events in calls.values():
        end_us = rng.randint(*FRACTION_US["ended"])
        for kind, e in events.items():
            us = end_us if kind in ("ended", "transferred") else rng.randint(*FRACTION_US[kind])
            e["at"] = (_t(e["at"]) + timedelta(microseconds=us)).isoformat()
            for field in ("talk_s", "hold_s", "wrap_s"):
                if e.get(field):
                    e[field] = round(e[field] + rng.random(), 3)


def _on_thresholds(calls: dict[tuple[str, str], dict[str, Record]]) -> None:
    """Move answers waiting 10-20 s to exactly the SL threshold and abandons waiting 3-7 s to
    exactly the short-abandon limit (where the call's later events stay after them)."""
    for events in calls.values():
        offered = events.get("offered")
        if offered is None:
            continue
        t0 = _t(offered["at"])
        for kind, target, lo, hi in (
            ("answered", SL_THRESHOLD_S, 10, 20),
            ("abandoned", SHORT_ABANDON_S, 3, 7),
        ):
            e = events.get(kind)
            if e is None or not lo <= (_t(e["at"]) - t0).total_seconds() <= hi:
                continue
            new = t0 + timedelta(seconds=target)
            later = [_t(x["at"]) for k, x in events.items() if k not in ("offered", kind)]
            if all(new < t for t in later):
                e["at"] = new.isoformat()


def _cdr(events: dict[str, Record]) -> Record | None:
    """The CDR of one call in one queue, from its live events (None while it has no outcome)."""
    offered = events.get("offered")
    outcome = next((o for o in OUTCOMES if o in events), None)
    if offered is None or outcome is None:
        return None
    end = events.get("ended") if outcome == "answered" else events[outcome]
    if end is None:
        return None
    cdr: Record = {
        "type": "cdr",
        "call_id": offered["call_id"],
        "queue": offered["queue"],
        "offered_at": offered["at"],
        "ended_at": end["at"],
        "outcome": outcome,
    }
    for field in ("caller", "case_id", "category"):
        if field in offered:
            cdr[field] = offered[field]
    if outcome == "answered":
        cdr["answered_at"] = events["answered"]["at"]
        for field in ("agent_id", "talk_s", "hold_s", "wrap_s", "resolved"):
            if field in end:
                cdr[field] = end[field]
        if "transferred" in events:
            cdr["transferred"] = True
    return cdr


def _zoned(r: Record) -> Record:
    """The record with its times written in one of three site time zones (the same instants)."""
    who = r.get("call_id") or r.get("agent_id") or ""
    zone = ZONES[_h(who) % len(ZONES)]
    return {k: (_t(v).astimezone(zone).isoformat() if k in TIME_FIELDS else v) for k, v in r.items()}


def partitions(records: list[Record], per_topic: int = 3) -> list[list[Record]]:
    """The records as Kafka partitions would hold them (file order within each)."""
    parts: dict[tuple[str, int], list[Record]] = defaultdict(list)
    for r in records:
        topic, key = {
            "call": ("calls", r.get("queue", "")),
            "cdr": ("calls", r.get("queue", "")),
            "agent": ("agents", r.get("agent_id", "")),
            "qa": ("qa", r.get("call_id", "")),
        }[r["type"]]
        parts[(topic, _h(key) % per_topic)].append(r)
    return [parts[k] for k in sorted(parts)]
