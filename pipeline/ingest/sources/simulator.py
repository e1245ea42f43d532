"""A deterministic discrete-event simulation of call-centre days.

``simulate(config)`` lazily yields native callpulse records (plain dicts, the
input table of DESIGN.md) in non-decreasing event time: calls offered on a
time-of-day arrival profile, FIFO service by skilled agents working shifts with
breaks and lunch, abandons when a caller's patience runs out, exits at the queue
timeout or to voicemail, transfers, repeat callers, complaint cases spanning
several contacts, and QA spot checks some minutes after a call.

Same config, same records. Every draw comes from a ``random.Random`` stream
seeded from ``SimConfig.seed``; arrivals and their per-call draws (patience,
talk time, transfer, QA, ...) have one stream per queue and day, so a changed
staffing plan (``Understaffing``) meets the very same callers. With ``quality`` on,
each answered call's media quality (native ``quality`` records, both directions of the
caller's leg over its queue's trunk) follows a minute or two after the call ends,
poor while that trunk is degraded (``Degradation``); those draws have a stream of their
own, so the other records are the same with quality on or off. Nothing reads the
clock or the environment. Times are whole epoch seconds inside and ISO 8601 with
the site's offset outside.

The simulator has no lifecycle of its own: it is a generator. The demo and
``callpulse simulate`` cut it into batches, or write it with ``write_jsonl``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

MAX_WAIT_S = 600  # queue timeout: a caller still waiting then is sent away (exited)
VOICEMAIL_OFFER_S = 60  # the IVR offers voicemail after this wait ...
VOICEMAIL_TAKE = 0.15  # ... and this share of callers would take it (exited)
VERY_PATIENT = 0.03  # callers who never hang up on their own
TRANSFER_SHARE = 0.03  # answered calls sent on to another queue
QA_SHARE = 0.05  # answered calls that get a QA evaluation
REPEAT_SHARE = 0.10  # first-time callers who call again hours later
CALLBACK_SHARE = 0.35  # callers who abandoned and try again minutes later
HOLD_SHARE = 0.20  # answered calls with some hold time
SHIFT_S = 8 * 3600 + 1800  # a shift, lunch included
CASE_QUEUE = "complaints"  # calls offered here open (or continue) a complaint case
CATEGORIES = ("billing_error", "service_outage", "staff_conduct", "delivery", "other")
EVALUATORS = ("qa-01", "qa-02", "qa-03", "qa-04")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue: daily volume, headcount (agents whose main queue it is) and call shape."""

    name: str
    calls_per_day: int
    agents: int
    mean_talk_s: float
    mean_wrap_s: float
    patience_s: float  # mean caller patience (exponential)


@dataclass(frozen=True, slots=True)
class Understaffing:
    """``agents_off`` of the agents on shift for ``queue`` go not_ready (meeting) start..end."""

    queue: str
    start: time
    end: time
    agents_off: float


@dataclass(frozen=True, slots=True)
class Degradation:
    """The trunk of ``queue`` (the calls that come in for it) degrades start..end: their
    legs offered then sound poor (MOS about 3, jitter about 45 ms, a few percent loss)."""

    queue: str
    start: time
    end: time


QUALITY_DELAY_S = (20, 150)  # quality follows the call's end by this much (call summaries come late)


def trunk_of(queue: str) -> str:
    """Each simulated queue's calls come in over a trunk of its own."""
    return f"{queue}-trunk"


# A mid-size centre: staffed so most hours meet 80 % in 15 s, while the 10:00 peak
# and the shift change around 18:00 hurt. Fields: name, calls/day, agents, talk, wrap, patience.
DEFAULT_QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("billing", 2400, 40, mean_talk_s=240, mean_wrap_s=30, patience_s=90),
    QueueSpec("support", 3000, 66, mean_talk_s=330, mean_wrap_s=45, patience_s=120),
    QueueSpec("sales", 1400, 30, mean_talk_s=270, mean_wrap_s=40, patience_s=60),
    QueueSpec("complaints", 400, 22, mean_talk_s=420, mean_wrap_s=90, patience_s=150),
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate. ``scale`` multiplies call volumes and headcount alike (a bigger
    centre with the same service), ``days`` runs consecutive days with the same roster."""

    seed: int = 1
    day: date = date(2026, 3, 2)
    tz: str = "Asia/Shanghai"
    open_time: time = time(8, 0)
    close_time: time = time(20, 0)
    queues: tuple[QueueSpec, ...] = DEFAULT_QUEUES
    understaffing: tuple[Understaffing, ...] = ()
    days: int = 1
    scale: float = 1.0
    quality: bool = False
    degradations: tuple[Degradation, ...] = ()

    def __post_init__(self) -> None:
        names = [q.name for q in self.queues]
        problems = []
        if not names:
            problems.append("queues: at least one queue is needed")
        if len(set(names)) != len(names):
            problems.append(f"queues: duplicate names in {names}")
        for q in self.queues:
            if q.calls_per_day < 0 or q.agents < 1:
                problems.append(f"queue {q.name}: calls_per_day >= 0 and agents >= 1 needed")
            if min(q.mean_talk_s, q.mean_wrap_s, q.patience_s) <= 0:
                problems.append(f"queue {q.name}: mean_talk_s, mean_wrap_s, patience_s must be > 0")
        for u in self.understaffing:
            if u.queue not in names:
                problems.append(f"understaffing: unknown queue {u.queue!r}")
            if not u.start < u.end or not 0.0 <= u.agents_off <= 1.0:
                problems.append(f"understaffing {u.queue}: start < end and 0 <= agents_off <= 1")
        for d in self.degradations:
            if d.queue not in names:
                problems.append(f"degradations: unknown queue {d.queue!r}")
            if not d.start < d.end:
                problems.append(f"degradation {d.queue}: start < end")
        if self.degradations and not self.quality:
            problems.append("degradations need quality = True")
        if not self.open_time < self.close_time:
            problems.append("open_time must be before close_time")
        if self.days < 1 or self.scale <= 0:
            problems.append("days >= 1 and scale > 0 needed")
        ZoneInfo(self.tz)  # raises for an unknown zone
        if problems:
            raise ValueError("; ".join(problems))


def arrival_profile(hour: float) -> float:
    """Relative arrival intensity at a local clock hour: quiet early and late,
    a morning peak around 10:30 and a lower one around 14:45."""
    return 0.35 + math.exp(-(((hour - 10.5) / 1.4) ** 2)) + 0.8 * math.exp(-(((hour - 14.75) / 1.6) ** 2))


def simulate(config: SimConfig) -> Iterator[dict[str, Any]]:
    """Yield the records of ``config.days`` simulated days, lazily, in event-time order."""
    return _Simulation(config).run()


def write_jsonl(records: Iterable[dict[str, Any]], path: Path | None = None) -> int:
    """Write one compact JSON object per line to ``path`` (stdout if None); return the count."""
    count = 0
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    if path is None:
        out = sys.stdout
        for record in records:
            out.write(dumps(record) + "\n")
            count += 1
        out.flush()
        return count
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(dumps(record) + "\n")
            count += 1
    return count


# ---------------------------------------------------------------- internals

# event kinds, in the heap as (at, seq, kind, a, b)
_DAY, _ARRIVAL, _SPAWN, _GIVEUP, _ANSWER, _END, _AVAILABLE, _LOGIN, _NOT_READY, _LOGOUT = range(10)
_UNDERSTAFF, _EMIT, _QUALITY = 10, 11, 12
# call states
_WAITING, _RINGING, _TALKING, _DONE = range(4)
# agent states (_SIGNED_IN: logged in, not yet ready)
_OUT, _READY, _AWAY, _RESERVED, _BUSY, _WRAP, _SIGNED_IN = range(7)
_PREFIXES = ("38", "39", "35", "36", "37", "50", "51", "58", "86", "88")


class _Case:
    __slots__ = ("case_id", "category", "planned", "done")

    def __init__(self, case_id: str, category: str, planned: int) -> None:
        self.case_id, self.category, self.planned, self.done = case_id, category, planned, 0


class _Call:
    __slots__ = (
        "call_id", "caller", "queue", "state", "leg", "offered_at", "giveup_s", "giveup_event",
        "talk_draw", "talk_s", "hold_s", "wrap_s", "transfer_to", "transferred_in", "qa", "qa_done",
        "case", "entry",
    )  # fmt: skip

    def __init__(self, call_id: str, caller: str, queue: str) -> None:
        self.call_id, self.caller, self.queue = call_id, caller, queue
        self.entry = queue  # the queue the call came in for: its trunk, whatever transfers follow
        self.state, self.leg, self.offered_at = _WAITING, 0, 0
        self.transfer_to: str | None = None
        self.transferred_in = self.qa = self.qa_done = False
        self.case: _Case | None = None
        self.giveup_s = self.talk_s = self.hold_s = self.wrap_s = 0
        self.talk_draw = 0.0  # talk time before the agent's own pace is applied
        self.giveup_event = "abandoned"


class _Agent:
    __slots__ = (
        "agent_id",
        "queues",
        "speed",
        "quality",
        "state",
        "epoch",
        "pending",
        "logout_due",
    )

    def __init__(self, agent_id: str, queues: list[str], speed: float, quality: float) -> None:
        self.agent_id, self.queues, self.speed, self.quality = agent_id, queues, speed, quality
        self.state, self.epoch, self.logout_due = _OUT, 0, False
        self.pending: deque[tuple[str, int, int]] = deque()  # (reason, duration, until or 0)


class _Arrivals:
    """Non-homogeneous Poisson arrivals of one queue on one day, by thinning."""

    __slots__ = ("queue", "rng", "open_at", "close_at", "open_h", "per_unit", "peak")

    def __init__(self, queue: str, rng: random.Random, open_at: int, close_at: int,
                 open_h: float, calls: float) -> None:  # fmt: skip
        self.queue, self.rng, self.open_at, self.close_at = queue, rng, open_at, close_at
        self.open_h = open_h
        span_h = (close_at - open_at) / 3600
        steps = max(1, int(span_h * 60))
        grid = [arrival_profile(open_h + (i + 0.5) * span_h / steps) for i in range(steps)]
        integral_s = sum(grid) * (close_at - open_at) / steps
        self.per_unit = calls / integral_s if integral_s > 0 else 0.0  # calls/s per profile unit
        self.peak = max(grid) * 1.05 * self.per_unit

    def next_after(self, t: float) -> float | None:
        if self.peak <= 0:
            return None
        rng = self.rng
        while True:
            t += rng.expovariate(self.peak)
            if t >= self.close_at:
                return None
            rate = self.per_unit * arrival_profile(self.open_h + (t - self.open_at) / 3600)
            if rng.random() * self.peak <= rate:
                return t


def _shift_shares(demand: list[float], starts: int, width: int) -> list[float]:
    """Share of agents per shift start (half-hour slots) so the thinnest coverage
    relative to ``demand`` is as thick as it gets: a local search moving blocks of
    agents between starts, from a big block down to one. The first and the last
    start keep some agents, so the phones are staffed from opening to closing."""
    n = 240
    count = [n // starts + (k < n % starts) for k in range(starts)]

    def score(cnt: list[int]) -> tuple[float, int]:
        ratios = [
            sum(cnt[k] for k in range(max(0, h - width + 1), min(h + 1, starts))) / need
            for h, need in enumerate(demand)
        ]
        low = min(ratios)
        return round(low, 9), -sum(r < low + 1e-9 for r in ratios)

    best, step = score(count), n // starts
    while step >= 1:
        improved = False
        for a, b in itertools.permutations(range(starts), 2):
            if count[a] - step < (1 if a in (0, starts - 1) else 0):
                continue
            count[a] -= step
            count[b] += step
            trial = score(count)
            if trial > best:
                best, improved = trial, True
            else:
                count[a] += step
                count[b] -= step
        if not improved:
            step //= 2
    return [c / n for c in count]


def _apportion(shares: list[float], n: int) -> list[int]:
    """``n`` agents over the starts by largest remainder, ends first when n is tiny."""
    count = [int(share * n) for share in shares]
    rest = sorted(range(len(shares)), key=lambda k: (count[k] - shares[k] * n, k))
    for k in rest[: n - sum(count)]:
        count[k] += 1
    return count


def _agent(agent: _Agent, state: str, at: str) -> dict[str, Any]:
    return {"type": "agent", "agent_id": agent.agent_id, "state": state, "at": at}


class _Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.tz = ZoneInfo(config.tz)
        self.specs = {q.name: q for q in config.queues}
        self.heap: list[tuple[int, int, int, Any, Any]] = []
        self.seq = itertools.count()
        self.out: list[dict[str, Any]] = []
        self.ready: dict[str, dict[_Agent, None]] = {q: {} for q in self.specs}
        self.waiting: dict[str, deque[_Call]] = {q: deque() for q in self.specs}
        self.weights = [max(q.calls_per_day, 1) for q in config.queues]
        self.agents = self._roster()
        self.shares: list[float] | None = None
        self._minute = -1
        self._prefix = self._suffix = ""

    # -- setup

    def _roster(self) -> list[_Agent]:
        rng = random.Random(f"{self.cfg.seed}:roster")
        names = list(self.specs)
        others = [n for n in names if n != CASE_QUEUE]
        agents: list[_Agent] = []
        for spec in self.cfg.queues:
            for _ in range(max(1, round(spec.agents * self.cfg.scale))):
                queues = [spec.name]
                extra = [n for n in others if n != spec.name]
                if spec.name != CASE_QUEUE and extra and rng.random() < 0.25:
                    queues.append(rng.choice(extra))
                speed = rng.lognormvariate(0.0, 0.15)
                quality = min(95.0, max(55.0, rng.gauss(80.0, 7.0)))
                agents.append(_Agent(f"a-{len(agents) + 1:03d}", queues, speed, quality))
        return agents

    def _push(self, at: int, kind: int, a: Any = None, b: Any = None) -> None:
        heapq.heappush(self.heap, (at, next(self.seq), kind, a, b))

    def _epoch(self, day: date, clock: time) -> int:
        return int(datetime.combine(day, clock, tzinfo=self.tz).timestamp())

    def _start_day(self, index: int) -> None:
        cfg = self.cfg
        day = cfg.day + timedelta(days=index)
        self.day_tag = day.strftime("%Y%m%d")
        self.call_no = self.case_no = 0
        self.open_at = self._epoch(day, cfg.open_time)
        self.close_at = self._epoch(day, cfg.close_time)
        open_h = cfg.open_time.hour + cfg.open_time.minute / 60 + cfg.open_time.second / 3600
        self.service = random.Random(f"{cfg.seed}:{day}:service")
        self.followups = random.Random(f"{cfg.seed}:{day}:followups")
        self.quality_rng = random.Random(f"{cfg.seed}:{day}:quality")
        self.degraded = {(d.queue, self._epoch(day, d.start), self._epoch(day, d.end)) for d in cfg.degradations}
        self._plan_shifts(day, random.Random(f"{cfg.seed}:{day}:shifts"))
        for spec in cfg.queues:
            rng = random.Random(f"{cfg.seed}:{day}:arrivals:{spec.name}")
            stream = _Arrivals(spec.name, rng, self.open_at, self.close_at, open_h,
                               spec.calls_per_day * cfg.scale)  # fmt: skip
            first = stream.next_after(self.open_at)
            if first is not None:
                self._push(int(first), _ARRIVAL, stream, first)
        for u in cfg.understaffing:
            start, end = self._epoch(day, u.start), self._epoch(day, u.end)
            rng = random.Random(f"{cfg.seed}:{day}:off:{u.queue}")
            self._push(start, _UNDERSTAFF, u, (end, rng))
        if index + 1 < cfg.days:
            self._push(self._epoch(day + timedelta(days=1), cfg.open_time) - 3600, _DAY, index + 1)

    def _plan_shifts(self, day: date, rng: random.Random) -> None:
        """Staggered shifts (earliest at opening, latest until closing), weighted to the
        busy hours; two breaks, lunch, and now and then training or a meeting."""
        span = self.close_at - self.open_at
        shift = min(SHIFT_S, span)
        open_h = self.cfg.open_time.hour + self.cfg.open_time.minute / 60
        starts = [k * 1800 for k in range((span - shift) // 1800 + 1)]
        if self.shares is None:  # the same every day
            demand = [arrival_profile(open_h + (k + 0.5) / 2) + 0.15 for k in range(span // 1800)]
            self.shares = _shift_shares(demand, len(starts), shift // 1800)
        by_queue: dict[str, list[_Agent]] = {}
        for agent in self.agents:
            agent.state, agent.logout_due = _OUT, False
            agent.pending.clear()
            by_queue.setdefault(agent.queues[0], []).append(agent)
        for members in by_queue.values():
            count = _apportion(self.shares, len(members))
            slots = [start for start, c in zip(starts, count, strict=True) for _ in range(c)]
            rng.shuffle(slots)
            for agent, offset in zip(members, slots, strict=True):
                begin = self.open_at + offset
                login = begin - rng.randint(0, 600)
                self._push(login, _LOGIN, agent)
                self._push(begin + shift + rng.randint(0, 300), _LOGOUT, agent)
                plan = [(0.15, 0.32, "break", 900, 180), (0.65, 0.85, "break", 900, 180)]
                if shift >= 5 * 3600:
                    plan.append((0.42, 0.58, "lunch", 1800, 900))
                if rng.random() < 0.12:
                    plan.append((0.1, 0.85, rng.choice(("training", "meeting")), 1800, 1800))
                for early, late, reason, base, extra in plan:
                    at = begin + int(rng.uniform(early, late) * shift)
                    self._push(at, _NOT_READY, agent, (reason, base + rng.randint(0, extra), 0))

    # -- calls

    def _new_call(self, rng: random.Random, queue: str, caller: str | None,
                  case: _Case | None) -> _Call:  # fmt: skip
        self.call_no += 1
        if caller is None:
            caller = f"+861{rng.choice(_PREFIXES)}{rng.randrange(10**8):08d}"
        call = _Call(f"c-{self.day_tag}-{self.call_no:06d}", caller, queue)
        self._draw_leg(rng, call)
        if queue == CASE_QUEUE:
            if case is None:
                self.case_no += 1
                planned = rng.choices((1, 2, 3), (0.5, 0.3, 0.2))[0]
                case_id = f"case-{self.day_tag}-{self.case_no:05d}"
                case = _Case(case_id, rng.choice(CATEGORIES), planned)
            call.case, call.transfer_to = case, None
        return call

    def _draw_leg(self, rng: random.Random, call: _Call) -> None:
        spec = self.specs[call.queue]
        patience = math.inf if rng.random() < VERY_PATIENT else rng.expovariate(1 / spec.patience_s)
        voicemail = VOICEMAIL_OFFER_S if rng.random() < VOICEMAIL_TAKE else math.inf
        call.giveup_event = "abandoned" if patience < min(voicemail, MAX_WAIT_S) else "exited"
        call.giveup_s = max(1, round(min(patience, voicemail, MAX_WAIT_S)))
        sigma = 0.7
        call.talk_draw = rng.lognormvariate(math.log(spec.mean_talk_s) - sigma**2 / 2, sigma)
        call.hold_s = round(rng.lognormvariate(3.5, 0.6)) if rng.random() < HOLD_SHARE else 0
        call.wrap_s = max(3, round(rng.lognormvariate(math.log(spec.mean_wrap_s) - 0.08, 0.4)))
        call.qa = rng.random() < QA_SHARE
        others = [q for q in self.specs if q != call.queue]
        call.transfer_to = None
        if rng.random() < TRANSFER_SHARE and others and not call.transferred_in:
            volumes = [self.specs[q].calls_per_day + 1 for q in others]
            call.transfer_to = rng.choices(others, volumes)[0]

    def _call_record(self, at: int, event: str, call: _Call) -> dict[str, Any]:
        rec: dict[str, Any] = {"type": "call", "event": event, "call_id": call.call_id,
                               "queue": call.queue, "at": self._fmt(at)}  # fmt: skip
        if call.case is not None:
            rec["case_id"], rec["category"] = call.case.case_id, call.case.category
        return rec

    def _offer(self, at: int, call: _Call) -> None:
        call.state, call.leg, call.offered_at = _WAITING, call.leg + 1, at
        rec = self._call_record(at, "offered", call)
        rec["caller"] = call.caller
        self.out.append(rec)
        ready = self.ready[call.queue]
        if ready:
            self._assign(at, call, next(iter(ready)))
        else:
            self.waiting[call.queue].append(call)
            self._push(at + call.giveup_s, _GIVEUP, call, call.leg)

    def _spawn(self, at: int, queue: str, caller: str, case: _Case | None) -> None:
        if at < self.close_at:
            self._push(at, _SPAWN, self._new_call(self.followups, queue, caller, case))

    def _arrival(self, at: int, stream: _Arrivals, exact: float) -> None:
        rng = stream.rng
        call = self._new_call(rng, stream.queue, None, None)
        repeat = rng.random() < REPEAT_SHARE and stream.queue != CASE_QUEUE
        later = at + rng.randint(1200, 4 * 3600)
        again = stream.queue
        if rng.random() >= 0.6:
            again = rng.choices(list(self.specs), self.weights)[0]
        self._offer(at, call)
        if repeat:
            self._spawn(later, again, call.caller, None)
        following = stream.next_after(exact)
        if following is not None:
            self._push(int(following), _ARRIVAL, stream, following)

    def _giveup(self, at: int, call: _Call, leg: int) -> None:
        if call.state != _WAITING or call.leg != leg:
            return
        call.state = _DONE
        self.out.append(self._call_record(at, call.giveup_event, call))
        if call.giveup_event == "abandoned":
            share = 0.6 if call.case is not None else CALLBACK_SHARE
            if self.followups.random() < share:
                later = at + self.followups.randint(60, 1200)
                self._spawn(later, call.queue, call.caller, call.case)

    def _assign(self, at: int, call: _Call, agent: _Agent) -> None:
        for q in agent.queues:
            self.ready[q].pop(agent, None)
        agent.state, call.state = _RESERVED, _RINGING
        self._push(at + self.service.randint(2, 6), _ANSWER, call, agent)

    def _answer(self, at: int, call: _Call, agent: _Agent) -> None:
        call.state, agent.state = _TALKING, _BUSY
        rec = self._call_record(at, "answered", call)
        rec["agent_id"] = agent.agent_id
        self.out.append(rec)
        self.out.append(_agent(agent, "busy", rec["at"]))
        call.talk_s = max(5, round(call.talk_draw * agent.speed))
        self._push(at + call.talk_s + call.hold_s, _END, call, agent)

    def _end(self, at: int, call: _Call, agent: _Agent) -> None:
        call.state = _DONE
        if call.transfer_to is not None:
            self.out.append(self._call_record(at, "transferred", call))
        rec = self._call_record(at, "ended", call)
        rec["agent_id"], rec["talk_s"] = agent.agent_id, call.talk_s
        rec["hold_s"], rec["wrap_s"] = call.hold_s, call.wrap_s
        case = call.case
        if case is not None:
            case.done += 1
            follow_at = at + self.followups.randint(1800, 3 * 3600)
            rec["resolved"] = case.done >= case.planned or follow_at >= self.close_at
            if not rec["resolved"]:
                self._spawn(follow_at, call.queue, call.caller, case)
        self.out.append(rec)
        agent.state, agent.epoch = _WRAP, agent.epoch + 1
        self.out.append(_agent(agent, "wrap", rec["at"]))
        self._push(at + call.wrap_s, _AVAILABLE, agent, agent.epoch)
        if call.qa and not call.qa_done:
            call.qa_done = True
            score = min(100, max(0, round(self.service.gauss(agent.quality, 8.0))))
            qa = (call.call_id, agent.agent_id, score, self.service.choice(EVALUATORS))
            self._push(at + call.wrap_s + self.service.randint(300, 5400), _EMIT, qa)
        if self.cfg.quality:
            self._plan_quality(at, call)
        if call.transfer_to is not None:
            call.queue, call.transferred_in = call.transfer_to, True
            self._draw_leg(self.followups, call)
            self._offer(at, call)

    def _plan_quality(self, at: int, call: _Call) -> None:
        """Both directions of the caller's leg, a while after the call ended: over the trunk
        the call came in on, poor while that trunk is degraded (a transfer keeps the trunk)."""
        rng = self.quality_rng
        poor = any(q == call.entry and lo <= call.offered_at < hi for q, lo, hi in self.degraded)
        leg = "caller" if call.leg == 1 else f"caller-{call.leg}"
        when = at + rng.randint(*QUALITY_DELAY_S)
        for direction in ("in", "out"):
            if poor:
                mos, jitter, loss = rng.gauss(3.0, 0.3), rng.lognormvariate(math.log(45.0), 0.3), rng.uniform(1.5, 6.0)
            else:
                mos, jitter, loss = rng.gauss(4.25, 0.12), rng.lognormvariate(math.log(6.0), 0.5), rng.expovariate(8.0)
            record = {
                "type": "quality", "call_id": call.call_id, "leg": leg, "direction": direction,
                "mos": round(min(4.5, max(1.0, mos)), 2), "jitter_ms": round(jitter, 1),
                "loss_pct": round(min(100.0, loss), 2), "rtt_ms": round(max(5.0, rng.gauss(60.0, 12.0)), 1),
                "trunk": trunk_of(call.entry),
            }  # fmt: skip
            self._push(when, _QUALITY, record)

    # -- agents

    def _agent_record(self, at: int, agent: _Agent, state: str) -> dict[str, Any]:
        rec = _agent(agent, state, self._fmt(at))
        self.out.append(rec)
        return rec

    def _available(self, at: int, agent: _Agent) -> None:
        """The agent is free (after login, wrap or a not-ready spell): logout, a due
        not-ready activity, the oldest waiting call of its queues, or ready and idle."""
        if agent.logout_due:
            self._sign_out(at, agent)
            return
        while agent.pending:
            reason, duration, until = agent.pending.popleft()
            end = until or at + duration
            if end > at:
                self._away(at, agent, reason, end)
                return
        agent.state = _READY
        self._agent_record(at, agent, "ready")
        oldest: _Call | None = None
        for q in agent.queues:
            line = self.waiting[q]
            while line and (line[0].state != _WAITING or line[0].queue != q):
                line.popleft()
            if line and (oldest is None or line[0].offered_at < oldest.offered_at):
                oldest = line[0]
        if oldest is not None:
            self.waiting[oldest.queue].popleft()
            self._assign(at, oldest, agent)
        else:
            for q in agent.queues:
                self.ready[q][agent] = None

    def _away(self, at: int, agent: _Agent, reason: str, until: int) -> None:
        for q in agent.queues:
            self.ready[q].pop(agent, None)
        agent.state, agent.epoch = _AWAY, agent.epoch + 1
        self._agent_record(at, agent, "not_ready")["reason"] = reason
        self._push(until, _AVAILABLE, agent, agent.epoch)

    def _not_ready(self, at: int, agent: _Agent, item: tuple[str, int, int]) -> None:
        if agent.state == _OUT or agent.logout_due:
            return
        if agent.state == _READY:
            end = item[2] or at + item[1]
            if end > at:
                self._away(at, agent, item[0], end)
        else:
            agent.pending.append(item)

    def _login(self, at: int, agent: _Agent) -> None:
        agent.state, agent.epoch = _SIGNED_IN, agent.epoch + 1
        self._agent_record(at, agent, "login")["queues"] = list(agent.queues)
        self._push(at + self.service.randint(10, 90), _AVAILABLE, agent, agent.epoch)

    def _logout(self, at: int, agent: _Agent) -> None:
        """Shift over: log out now, or after the call in hand."""
        if agent.state in (_RESERVED, _BUSY, _WRAP):
            agent.logout_due = True
        elif agent.state != _OUT:
            self._sign_out(at, agent)

    def _sign_out(self, at: int, agent: _Agent) -> None:
        for q in agent.queues:
            self.ready[q].pop(agent, None)
        agent.state, agent.epoch, agent.logout_due = _OUT, agent.epoch + 1, False
        agent.pending.clear()
        self._agent_record(at, agent, "logout")

    def _understaff(self, at: int, u: Understaffing, end: int, rng: random.Random) -> None:
        on_shift = [a for a in self.agents if a.queues[0] == u.queue and a.state != _OUT]
        for agent in rng.sample(on_shift, round(u.agents_off * len(on_shift))):
            self._not_ready(at, agent, ("meeting", 0, end))

    # -- loop

    def _fmt(self, at: int) -> str:
        minute = at // 60
        if minute != self._minute:
            local = datetime.fromtimestamp(minute * 60, self.tz)
            self._prefix, self._suffix = local.strftime("%Y-%m-%dT%H:%M:"), local.isoformat()[19:]
            self._minute = minute
        return f"{self._prefix}{at - minute * 60:02d}{self._suffix}"

    def run(self) -> Iterator[dict[str, Any]]:
        self._push(self._epoch(self.cfg.day, self.cfg.open_time) - 3600, _DAY, 0)
        heap, out, pop = self.heap, self.out, heapq.heappop
        while heap:
            at, _, kind, a, b = pop(heap)
            if kind == _ARRIVAL:
                self._arrival(at, a, b)
            elif kind == _ANSWER:
                self._answer(at, a, b)
            elif kind == _END:
                self._end(at, a, b)
            elif kind == _AVAILABLE:
                if a.epoch == b and a.state in (_WRAP, _AWAY, _SIGNED_IN):
                    self._available(at, a)
            elif kind == _GIVEUP:
                self._giveup(at, a, b)
            elif kind == _SPAWN:
                self._offer(at, a)
            elif kind == _NOT_READY:
                self._not_ready(at, a, b)
            elif kind == _LOGIN:
                self._login(at, a)
            elif kind == _LOGOUT:
                self._logout(at, a)
            elif kind == _UNDERSTAFF:
                self._understaff(at, a, *b)
            elif kind == _EMIT:
                call_id, agent_id, score, evaluator = a
                out.append({"type": "qa", "call_id": call_id, "agent_id": agent_id, "score": score,
                            "at": self._fmt(at), "evaluator": evaluator})  # fmt: skip
            elif kind == _QUALITY:
                out.append({**a, "at": self._fmt(at)})
            elif kind == _DAY:
                self._start_day(a)
            if out:
                yield from out
                out.clear()
