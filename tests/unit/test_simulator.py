"""The call-centre simulator: deterministic, ordered, valid per DESIGN.md, and realistic."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.records import AGENT_STATES, CALL_EVENTS
from pipeline.ingest.sources.simulator import (
    QueueSpec,
    SimConfig,
    Understaffing,
    simulate,
    write_jsonl,
)

Record = dict[str, Any]
OUTCOMES = ("answered", "abandoned", "exited")
NOT_READY_REASONS = {"break", "lunch", "training", "meeting"}
UNDERSTAFFED = Understaffing("billing", time(11, 0), time(12, 0), 0.7)


@pytest.fixture(scope="module")
def day() -> list[Record]:
    return list(simulate(SimConfig()))


@pytest.fixture(scope="module")
def understaffed() -> list[Record]:
    return list(simulate(SimConfig(understaffing=(UNDERSTAFFED,))))


def at(record: Record) -> datetime:
    return datetime.fromisoformat(record["at"])


def calls(records: list[Record]) -> dict[tuple[str, str], dict[str, Record]]:
    """(call_id, queue) -> event -> record."""
    legs: dict[tuple[str, str], dict[str, Record]] = defaultdict(dict)
    for r in records:
        if r["type"] == "call":
            legs[(r["call_id"], r["queue"])][r["event"]] = r
    return legs


def check_valid(records: list[Record]) -> None:
    """Every DESIGN.md rule the simulator promises, on any output."""
    assert records
    times = [at(r) for r in records]
    assert all(t.tzinfo is not None for t in times)
    assert times == sorted(times), "records out of event-time order"
    call_keys: Counter[tuple[str, ...]] = Counter()
    agent_keys: Counter[tuple[str, ...]] = Counter()
    qa_keys: Counter[tuple[str, ...]] = Counter()
    for r in records:
        assert isinstance(r["at"], str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", r["at"]), r
        if r["type"] == "call":
            assert r["event"] in CALL_EVENTS
            assert r["call_id"] and r["queue"]
            call_keys[(r["call_id"], r["queue"], r["event"])] += 1
            if r["event"] == "offered":
                assert re.fullmatch(r"\+861\d{10}", r["caller"]), r
            if r["event"] in ("answered", "ended"):
                assert r["agent_id"], r
            if r["event"] == "ended":
                for name in ("talk_s", "hold_s", "wrap_s"):
                    assert isinstance(r[name], int) and r[name] >= 0, r
                assert r["talk_s"] > 0
            if "case_id" in r:
                assert r["category"]
            assert ("resolved" in r) == (r["event"] == "ended" and "case_id" in r)
        elif r["type"] == "agent":
            assert r["state"] in AGENT_STATES and r["agent_id"]
            agent_keys[(r["agent_id"], r["at"], r["state"])] += 1
            assert ("reason" in r) == (r["state"] == "not_ready"), r
            assert ("queues" in r) == (r["state"] == "login"), r
            if r["state"] == "not_ready":
                assert r["reason"] in NOT_READY_REASONS
            if r["state"] == "login":
                assert r["queues"] and all(isinstance(q, str) for q in r["queues"])
        else:
            assert r["type"] == "qa", r
            assert isinstance(r["score"], int) and 0 <= r["score"] <= 100
            assert r["call_id"] and r["agent_id"] and r["evaluator"]
            qa_keys[(r["call_id"], r["agent_id"])] += 1
    for keys in (call_keys, agent_keys, qa_keys):
        assert not [k for k, n in keys.items() if n > 1], "duplicate keys"

    # causality per call leg: one outcome, after the offer; ended after answered
    for (call_id, queue), events in calls(records).items():
        assert "offered" in events, (call_id, queue)
        outcomes = [e for e in OUTCOMES if e in events]
        assert len(outcomes) <= 1, events
        for e in outcomes:
            assert at(events[e]) >= at(events["offered"])
        if "ended" in events or "transferred" in events:
            assert "answered" in events
        if "ended" in events:
            assert at(events["ended"]) >= at(events["answered"])
            assert events["ended"]["agent_id"] == events["answered"]["agent_id"]
            talk = events["ended"]["talk_s"] + events["ended"]["hold_s"]
            assert at(events["ended"]) - at(events["answered"]) == timedelta(seconds=talk)

    # agents: a legal state machine, busy exactly while handling a call
    allowed = {
        None: {"login"},
        "login": {"ready", "logout", "not_ready"},
        "ready": {"busy", "not_ready", "logout"},
        "busy": {"wrap"},
        "wrap": {"ready", "not_ready", "logout"},
        "not_ready": {"ready", "not_ready", "logout"},
        "logout": {"login"},
    }
    state: dict[str, str | None] = defaultdict(lambda: None)
    handling: dict[str, str] = {}
    for r in records:
        if r["type"] == "agent":
            assert r["state"] in allowed[state[r["agent_id"]]], (state[r["agent_id"]], r)
            state[r["agent_id"]] = r["state"]
        elif r["type"] == "call" and r["event"] == "answered":
            assert state[r["agent_id"]] in ("ready", "busy") and r["agent_id"] not in handling
            handling[r["agent_id"]] = r["call_id"]
        elif r["type"] == "call" and r["event"] == "ended":
            assert handling.pop(r["agent_id"]) == r["call_id"]
    # the busy record shares the answered second, wrap the ended one
    agent_at = {(r["agent_id"], r["at"], r["state"]) for r in records if r["type"] == "agent"}
    for r in records:
        if r["type"] == "call" and r["event"] in ("answered", "ended"):
            expected = "busy" if r["event"] == "answered" else "wrap"
            assert (r["agent_id"], r["at"], expected) in agent_at, r
    assert not handling
    assert all(s in (None, "logout") for s in state.values()), "agents left logged in"


def test_default_day_is_valid(day: list[Record]) -> None:
    check_valid(day)
    assert 30_000 < len(day) < 80_000
    assert {at(r).utcoffset() for r in day} == {timedelta(hours=8)}
    assert at(day[0]).date() == date(2026, 3, 2)


def test_same_config_gives_identical_records(day: list[Record]) -> None:
    assert list(simulate(SimConfig())) == day


def test_different_seed_gives_different_records(day: list[Record]) -> None:
    other = list(simulate(SimConfig(seed=2)))
    assert other != day
    assert {r["caller"] for r in other if r.get("event") == "offered"}.isdisjoint(
        {r["caller"] for r in day if r.get("event") == "offered"}
    )


def test_arrivals_follow_the_day_profile(day: list[Record]) -> None:
    first_legs = {r["call_id"]: r for r in reversed(day) if r.get("event") == "offered"}
    by_hour = Counter(at(r).hour for r in first_legs.values())
    assert set(by_hour) <= set(range(8, 20))  # only a transfer may be offered after closing
    peak = max(by_hour.values())
    assert by_hour[10] == peak or by_hour[10] > 0.9 * peak
    assert peak > 2.5 * by_hour[8]
    assert by_hour[10] > by_hour[12] < by_hour[14] > by_hour[17]  # two peaks
    assert by_hour[19] < 0.5 * peak


def test_queues_have_different_volumes(day: list[Record]) -> None:
    offered = Counter(r["queue"] for r in day if r.get("event") == "offered")
    assert set(offered) == {"billing", "support", "sales", "complaints"}
    assert offered["support"] > offered["billing"] > offered["sales"] > offered["complaints"]


def test_each_call_has_an_outcome_and_service_is_mostly_fine(day: list[Record]) -> None:
    legs = calls(day)
    outcomes = Counter(next(e for e in OUTCOMES if e in ev) for ev in legs.values())
    assert sum(outcomes.values()) == len(legs)
    assert 0.01 < outcomes["abandoned"] / len(legs) < 0.12
    assert all("ended" in ev for ev in legs.values() if "answered" in ev)


def hourly(records: list[Record], queue: str, hour: int) -> tuple[float, float, int]:
    """Abandon share, mean wait (s) and offered count of calls offered in that hour."""
    waits, abandoned = [], 0
    for (_, q), ev in calls(records).items():
        if q != queue or at(ev["offered"]).hour != hour:
            continue
        outcome = next(e for e in OUTCOMES if e in ev)
        waits.append((at(ev[outcome]) - at(ev["offered"])).total_seconds())
        abandoned += outcome == "abandoned"
    return abandoned / len(waits), sum(waits) / len(waits), len(waits)


def test_understaffed_hour_hurts_that_queue_then_recovers(day: list[Record], understaffed: list[Record]) -> None:
    check_valid(understaffed)
    base_abandon, base_wait, base_n = hourly(day, "billing", 11)
    hit_abandon, hit_wait, hit_n = hourly(understaffed, "billing", 11)
    assert abs(hit_n - base_n) <= 0.1 * base_n  # the same callers came
    assert hit_abandon > base_abandon + 0.08 and hit_abandon > 3 * base_abandon
    assert hit_wait > 2 * base_wait
    # agents come back at 12:00: the next quiet hours look like the normal day again
    late_abandon, late_wait, _ = hourly(understaffed, "billing", 13)
    normal_abandon, normal_wait, _ = hourly(day, "billing", 13)
    assert late_abandon < normal_abandon + 0.05 and late_wait < normal_wait + 10
    # the meeting shows as not_ready agents at 11:00, back before 12:01
    meeting = [r for r in understaffed if r.get("reason") == "meeting" and at(r).time().hour == 11]
    assert len(meeting) >= 15


def test_transfers_reoffer_the_same_call_in_another_queue(day: list[Record]) -> None:
    legs = calls(day)
    transferred = [(cid, q) for (cid, q), ev in legs.items() if "transferred" in ev]
    answered = sum("answered" in ev for ev in legs.values())
    assert 0.015 < len(transferred) / answered < 0.05
    queues_of: dict[str, list[str]] = defaultdict(list)
    for cid, q in legs:
        queues_of[cid].append(q)
    for cid, q in transferred:
        ev = legs[(cid, q)]
        assert "ended" in ev and ev["transferred"]["at"] == ev["ended"]["at"]
        (target,) = [other for other in queues_of[cid] if other != q]
        assert legs[(cid, target)]["offered"]["at"] == ev["ended"]["at"]
        assert legs[(cid, target)]["offered"]["caller"] == ev["offered"]["caller"]


def test_some_callers_call_again_later(day: list[Record]) -> None:
    offers = [r for r in day if r.get("event") == "offered"]
    first_leg = {r["call_id"]: r for r in reversed(offers)}  # a transfer is not a new call
    per_caller: dict[str, list[Record]] = defaultdict(list)
    for r in first_leg.values():
        per_caller[r["caller"]].append(r)
    repeaters = [rs for rs in per_caller.values() if len(rs) > 1]
    assert 0.08 < len(repeaters) / len(per_caller) < 0.25
    assert any(at(max(rs, key=at)) - at(min(rs, key=at)) > timedelta(hours=1) for rs in repeaters)
    assert all(len({r["call_id"] for r in rs}) == len(rs) for rs in repeaters)


def test_complaint_cases_span_contacts_and_end_resolved(day: list[Record]) -> None:
    contacts: dict[str, list[Record]] = defaultdict(list)
    for r in day:
        if r.get("event") == "ended" and "case_id" in r:
            contacts[r["case_id"]].append(r)
    assert contacts
    assert {r["queue"] for rs in contacts.values() for r in rs} == {"complaints"}
    sizes = Counter(len(rs) for rs in contacts.values())
    assert sizes[1] and sizes[2] and sizes[3] and max(sizes) <= 3
    resolved = 0
    for rs in contacts.values():
        flags = [r["resolved"] for r in rs]  # in time order
        assert flags.count(True) <= 1 and (True not in flags or flags[-1] is True)
        resolved += flags[-1]
        assert len({r["category"] for r in rs}) == 1
        assert len({r["call_id"] for r in rs}) == len(rs)
    assert resolved > 0.8 * len(contacts)
    offers = {r["call_id"]: r["caller"] for r in day if r.get("event") == "offered"}
    for rs in contacts.values():
        assert len({offers[r["call_id"]] for r in rs}) == 1  # one caller per case


def test_qa_spot_checks_follow_answered_calls(day: list[Record]) -> None:
    ended = {(r["call_id"], r["agent_id"]): r for r in day if r.get("event") == "ended"}
    qa = [r for r in day if r["type"] == "qa"]
    answered_calls = {cid for cid, _ in ended}
    assert 0.025 < len(qa) / len(answered_calls) < 0.08
    for r in qa:
        call_end = at(ended[(r["call_id"], r["agent_id"])])
        assert timedelta(minutes=1) < at(r) - call_end < timedelta(hours=3)
    scores = [r["score"] for r in qa]
    assert 60 < sum(scores) / len(scores) < 95 and len(set(scores)) > 10


def test_agents_work_shifts_with_breaks_and_several_queues(day: list[Record]) -> None:
    agent = [r for r in day if r["type"] == "agent"]
    reasons = Counter(r["reason"] for r in agent if r["state"] == "not_ready")
    assert {"break", "lunch"} <= set(reasons) and {"training", "meeting"} & set(reasons)
    logins = [r for r in agent if r["state"] == "login"]
    assert all(re.fullmatch(r"a-\d{3,}", r["agent_id"]) for r in logins)
    assert any(len(r["queues"]) > 1 for r in logins)
    first = min(at(r) for r in logins).time()
    last = max(at(r) for r in agent if r["state"] == "logout").time()
    assert first <= time(8, 0) and last >= time(20, 0)
    starts = {at(r).replace(minute=at(r).minute // 30 * 30, second=0) for r in logins}
    assert len(starts) >= 3  # staggered shifts


def test_exits_happen_when_waits_grow(understaffed: list[Record]) -> None:
    legs = calls(understaffed)
    exited = [ev for ev in legs.values() if "exited" in ev]
    assert exited
    for ev in exited:
        assert at(ev["exited"]) - at(ev["offered"]) >= timedelta(seconds=60)


def test_days_and_scale_extend_the_run() -> None:
    small = (
        QueueSpec("billing", 300, 4, 200, 20, 60),
        QueueSpec("complaints", 60, 2, 300, 60, 120),
    )
    records = list(simulate(SimConfig(queues=small, days=2, scale=2.0, tz="Europe/Berlin")))
    check_valid(records)
    assert {at(r).date() for r in records} == {date(2026, 3, 2), date(2026, 3, 3)}
    assert {at(r).utcoffset() for r in records} == {timedelta(hours=1)}
    offered = sum(r.get("event") == "offered" for r in records)
    assert offered > 2 * 2 * 360  # two days of twice the volume, repeats on top
    logins = [r for r in records if r["type"] == "agent" and r["state"] == "login"]
    assert len({r["agent_id"] for r in logins}) == 12  # (4 + 2) agents, scaled by 2
    assert len(logins) == 24  # each logs in on both days


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    volume=st.integers(0, 400),
    agents=st.integers(1, 6),
    patience=st.floats(5, 600),
    off=st.floats(0, 1),
)
def test_any_small_config_yields_valid_records(
    seed: int, volume: int, agents: int, patience: float, off: float
) -> None:
    queues = (
        QueueSpec("sales", volume, agents, 180, 20, patience),
        QueueSpec("complaints", volume // 4, max(1, agents // 2), 300, 60, patience),
    )
    config = SimConfig(
        seed=seed,
        queues=queues,
        open_time=time(9, 0),
        close_time=time(15, 0),
        understaffing=(Understaffing("sales", time(10), time(11), off),),
    )
    records = list(simulate(config))
    check_valid(records)
    assert list(simulate(replace(config))) == records


@pytest.mark.parametrize(
    "kwargs",
    [
        {"queues": ()},
        {"queues": (QueueSpec("a", 10, 1, 60, 10, 30), QueueSpec("a", 10, 1, 60, 10, 30))},
        {"queues": (QueueSpec("a", 10, 0, 60, 10, 30),)},
        {"queues": (QueueSpec("a", 10, 1, 0, 10, 30),)},
        {"understaffing": (Understaffing("nope", time(10), time(11), 0.5),)},
        {"understaffing": (Understaffing("billing", time(11), time(10), 0.5),)},
        {"understaffing": (Understaffing("billing", time(10), time(11), 1.5),)},
        {"open_time": time(20), "close_time": time(8)},
        {"days": 0},
        {"scale": 0},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimConfig(**kwargs)


def test_write_jsonl_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = SimConfig(queues=(QueueSpec("sales", 200, 3, 120, 10, 60),), close_time=time(12))
    records = list(simulate(config))
    path = tmp_path / "day.jsonl"
    assert write_jsonl(simulate(config), path) == len(records)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records
    assert all(": " not in line and ", " not in line for line in lines)
    assert write_jsonl(iter(records[:5]), None) == 5
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == records[:5]


def test_quality_is_off_by_default_and_adds_only_quality_records() -> None:
    from pipeline.ingest.sources.simulator import Degradation, trunk_of

    cfg = SimConfig(seed=5, close_time=time(11, 0))
    plain = list(simulate(cfg))
    degraded = Degradation("billing", time(9, 0), time(10, 0))
    with_q = list(simulate(replace(cfg, quality=True, degradations=(degraded,))))
    assert not any(r["type"] == "quality" for r in plain)
    assert [r for r in with_q if r["type"] != "quality"] == plain
    quality = [r for r in with_q if r["type"] == "quality"]
    ends: dict[str, list[str]] = defaultdict(list)
    offered: dict[str, Record] = {}
    for r in plain:
        if r["type"] == "call" and r["event"] == "ended":
            ends[r["call_id"]].append(r["at"])
        if r["type"] == "call" and r["event"] == "offered":
            offered.setdefault(r["call_id"], r)
    # every ended (answered) call has both directions of each leg it was answered on, after it ended
    per_call = Counter(r["call_id"] for r in quality)
    assert per_call == {c: 2 * len(at) for c, at in ends.items()}
    assert all(datetime.fromisoformat(r["at"]) > datetime.fromisoformat(ends[r["call_id"]][0]) for r in quality)
    for r in quality:
        assert 1 <= r["mos"] <= 4.5 and r["jitter_ms"] >= 0 and 0 <= r["loss_pct"] <= 100
        assert r["direction"] in ("in", "out")
        assert r["trunk"] == trunk_of(offered[r["call_id"]]["queue"])  # the trunk it came in on, transfers too

    def poor(r: Record) -> bool:
        return r["mos"] < 3.5 or r["loss_pct"] > 1 or r["jitter_ms"] > 30

    def in_hour(r: Record) -> bool:
        o = offered[r["call_id"]]
        return o["queue"] == "billing" and time(9) <= datetime.fromisoformat(o["at"]).time() < time(10)

    hour = [r for r in quality if r["leg"] == "caller" and in_hour(r)]
    rest = [r for r in quality if not in_hour(r)]
    assert len(hour) > 50 and sum(map(poor, hour)) / len(hour) > 0.9
    assert sum(map(poor, rest)) / len(rest) < 0.03


def test_degradation_needs_quality_and_a_known_queue() -> None:
    from pipeline.ingest.sources.simulator import Degradation

    with pytest.raises(ValueError, match="degradations need quality"):
        SimConfig(degradations=(Degradation("billing", time(9), time(10)),))
    with pytest.raises(ValueError, match="unknown queue 'nope'"):
        SimConfig(quality=True, degradations=(Degradation("nope", time(9), time(10)),))
