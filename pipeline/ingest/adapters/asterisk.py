"""Asterisk app_queue ``queue_log`` lines → native call and agent records.

A line is ``epoch|callid|queuename|agent|event|data1|data2|...`` (Asterisk docs,
"Queue Logs"); the older single ``data`` column holds the same ``|``-separated
arguments, so both read alike. Per verb (arguments as documented):

============================  ==================================================
ENTERQUEUE(url|callerid|pos)  ``offered``; caller from callerid (data2)
CONNECT(holdtime|uid|ring)    ``answered`` by the member; agent ``busy``
ABANDON(pos|origpos|wait)     ``abandoned``
EXITWITHTIMEOUT, EXITEMPTY,   ``exited`` (timeout, no reachable members, menu key)
EXITWITHKEY
COMPLETEAGENT/COMPLETECALLER  ``ended`` with ``talk_s`` = calltime (data2); agent
(holdtime|calltime|origpos)   back to ``ready`` (or ``not_ready`` if paused)
TRANSFER, BLINDTRANSFER       ``transferred`` + ``ended`` with ``talk_s`` =
(ext|ctx|holdtime|calltime)   calltime (data4); ATTENDEDTRANSFER likewise
AGENTLOGIN, AGENTCALLBACK-    agent ``login`` + ``ready`` / ``logout``
LOGIN, ADDMEMBER / AGENTLOG-  (ADDMEMBER ``PAUSED`` → ``not_ready``); a member
OFF, AGENTCALLBACKLOGOFF,     removed from one queue but still in others is not
REMOVEMEMBER                  logged out
PAUSE(reason) / UNPAUSE,      ``not_ready`` with the reason / ``ready``
PAUSEALL / UNPAUSEALL
RINGNOANSWER, RINGCANCELED,   accepted, nothing emitted: no call state changes
AGENTDUMP, SYSCOMPAT, QUEUE-
START, CONFIGRELOAD, DID,
INFO, PENALTY, FULL,
JOINEMPTY, JOINUNAVAIL
============================  ==================================================

Decisions:

- ``holdtime`` in queue_log is the caller's *queue wait*, not in-call hold, so it
  never becomes ``hold_s``; queue_log records no in-call hold and no wrap-up, so
  ``hold_s`` and ``wrap_s`` are absent (a configured ``wrapuptime`` is not logged).
- Agents are kept as logged (``SIP/1001``, ``PJSIP/1001``, a member name).
- The agent is ``busy`` from CONNECT to the end of the call. A PAUSE during a call
  is remembered and becomes ``not_ready`` when the call ends; repeated states (a
  PAUSE logged once per queue plus PAUSEALL) are emitted once.
- If a closing line arrives for a call whose ENTERQUEUE / CONNECT this parser did
  not see (tailing started mid-call), the missing ``offered`` / ``answered`` is
  rebuilt from the logged wait and talk times; it has the same key as the real one,
  so the store's dedupe keeps one.
- ENTERQUEUE without a closing line stays an offered call (the orphan rule closes it).
- What it knows of agents outlives the parser (``memory()``, stored with the source's
  offset; a new parser is given it): a restart does not forget a pause taken during a
  call or an agent's other queues.
- Timestamps are epoch seconds (numbers); a ``YYYY-MM-DD HH:MM:SS`` time (queue_log
  kept in a database) is read in the site time zone.
- Unknown verbs and broken lines become dead letters with a reason; phone-number
  like digit runs in their raw text are masked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.core.pii import mask_phone_like
from pipeline.core.records import AgentMemory, DeadLetter, Parsed

Item = Parsed | DeadLetter

CALL_END_VERBS = frozenset({"COMPLETEAGENT", "COMPLETECALLER"})
TRANSFER_VERBS = frozenset({"TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"})
EXIT_VERBS = {"EXITWITHTIMEOUT": 2, "EXITEMPTY": 2, "EXITWITHKEY": 3}  # verb → index of waittime
LOGIN_VERBS = frozenset({"AGENTLOGIN", "AGENTCALLBACKLOGIN", "ADDMEMBER"})
LOGOUT_VERBS = frozenset({"AGENTLOGOFF", "AGENTCALLBACKLOGOFF", "REMOVEMEMBER"})
PAUSE_VERBS = frozenset({"PAUSE", "PAUSEALL"})
UNPAUSE_VERBS = frozenset({"UNPAUSE", "UNPAUSEALL"})
QUIET_VERBS = frozenset(
    {
        "RINGNOANSWER",
        "RINGCANCELED",
        "AGENTDUMP",
        "SYSCOMPAT",
        "QUEUESTART",
        "CONFIGRELOAD",
        "DID",
        "INFO",
        "PENALTY",
        "FULL",
        "JOINEMPTY",
        "JOINUNAVAIL",
    }
)
KNOWN_VERBS = (
    frozenset({"ENTERQUEUE", "CONNECT", "ABANDON"})
    | CALL_END_VERBS
    | TRANSFER_VERBS
    | frozenset(EXIT_VERBS)
    | LOGIN_VERBS
    | LOGOUT_VERBS
    | PAUSE_VERBS
    | UNPAUSE_VERBS
    | QUIET_VERBS
)
_NO_VALUE = frozenset({"", "NONE"})
_NO_CALLER = frozenset({"", "unknown", "anonymous", "<unknown>", "restricted", "private"})
_FORGET_AFTER_S = 24 * 3600  # per-call state of calls silent this long is dropped


def _int_or_text(value: str | None) -> int | str | None:
    """A logged number as int; anything else as the text (validation judges it)."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return value


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(slots=True)
class _Call:
    seen: float
    caller: str | None = None
    offered: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Agent:
    calls: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)
    paused: bool = False
    reason: str | None = None
    last: tuple[str, str | None] | None = None


class QueueLogParser:
    """Turns queue_log lines into native records, keeping per-call and per-agent state.

    Feed it ``(position, line)`` pairs in log order, with :meth:`parse` (an iterable)
    or :meth:`feed` (one line, returns what it made). ``stats`` counts lines by verb
    and dead letters by reason.

    What it knows of agents is not all in the events it emits (a pause during a call,
    membership of several queues), so :meth:`memory` gives it as records to store with
    the source's offset, and ``agents`` (from the store) starts a parser where a
    stopped one left off. Per-call state is not kept: a closing line rebuilds it.
    """

    def __init__(self, source: str = "queue_log", *, timezone: str = "UTC", agents: Iterable[AgentMemory] = ()) -> None:
        self.source = source
        self.tz = ZoneInfo(timezone)
        self.stats: Counter[str] = Counter()
        self._calls: dict[str, _Call] = {}
        self._agents: dict[str, _Agent] = {
            a.agent_id: _Agent(
                set(a.calls),
                set(a.queues),
                a.paused,
                a.reason,
                None if a.last_state is None else (a.last_state, a.last_reason),
            )
            for a in agents
        }
        self._lines = 0

    def memory(self) -> tuple[AgentMemory, ...]:
        """What this parser knows of each agent now (see the class docstring)."""
        return tuple(
            AgentMemory(
                agent,
                tuple(sorted(a.queues)),
                tuple(sorted(a.calls)),
                a.paused,
                a.reason,
                a.last[0] if a.last else None,
                a.last[1] if a.last else None,
            )
            for agent, a in sorted(self._agents.items())
        )

    def parse(self, lines: Iterable[tuple[str, str]]) -> Iterator[Item]:
        for position, line in lines:
            yield from self.feed(position, line)

    def feed(self, position: str, line: str) -> list[Item]:
        text = line.rstrip("\r\n")
        if not text.strip():
            return []
        try:
            out = self._line(position, text)
        except Exception as exc:  # never crash on input: a bug here becomes a dead letter
            out = [self._dead(position, text, f"adapter error: {type(exc).__name__}: {exc}")]
        self._lines += 1
        if self._lines % 5000 == 0:
            self._forget()
        return out

    # -- one line -----------------------------------------------------------------

    def _line(self, position: str, text: str) -> list[Item]:
        parts = text.split("|")
        if len(parts) < 5:
            return [self._dead(position, text, f"not a queue_log line: {len(parts)} fields, need 5+")]
        stamp, callid, queue, agent, verb = (p.strip() for p in parts[:5])
        data = parts[5:]
        at = self._at(stamp)
        if at is None:
            return [self._dead(position, text, f"bad timestamp {stamp[:40]!r}")]
        if not verb:
            return [self._dead(position, text, "no event verb")]
        if verb not in KNOWN_VERBS:
            return [self._dead(position, text, f"unknown queue_log event {verb[:40]!r}")]
        self.stats[verb] += 1
        emit = _Emitter(position, text)
        member = None if agent in _NO_VALUE else agent
        arg = lambda i: data[i].strip() if i < len(data) else None  # noqa: E731

        if verb in QUIET_VERBS:
            return []
        if verb in LOGIN_VERBS | LOGOUT_VERBS | PAUSE_VERBS | UNPAUSE_VERBS:
            if member is None:
                return [self._dead(position, text, f"{verb} without an agent")]
            self._agent_line(emit, verb, member, None if queue in _NO_VALUE else queue, at, arg)
            return emit.items

        # the rest are call events
        if callid in _NO_VALUE or queue in _NO_VALUE:
            return [self._dead(position, text, f"{verb} without a call id or queue")]
        call = self._calls.get(callid)
        if call is None:
            call = self._calls[callid] = _Call(seen=_epoch(at))
        call.seen = _epoch(at)
        base: dict[str, Any] = {"type": "call", "call_id": callid, "queue": queue}

        def rec(event: str, when: Any, **extra: Any) -> dict[str, Any]:
            r = dict(base, event=event, at=when)
            if call.caller is not None:
                r["caller"] = call.caller
            r.update({k: v for k, v in extra.items() if v is not None})
            return r

        def ensure_offered(wait: int | None, before: int = 0) -> None:
            if queue not in call.offered and wait is not None and isinstance(at, (int, float)):
                emit.add(rec("offered", at - before - wait))
            call.offered.add(queue)

        def ensure_answered(talk: int | None) -> None:
            if queue not in call.answered and talk is not None and isinstance(at, (int, float)):
                emit.add(rec("answered", at - talk, agent_id=member))
            call.answered.add(queue)

        if verb == "ENTERQUEUE":
            cid = arg(1)
            if cid is not None and cid.lower() not in _NO_CALLER:
                call.caller = cid
            call.offered.add(queue)
            call.answered.discard(queue)
            emit.add(rec("offered", at))
        elif verb == "CONNECT":
            ensure_offered(_as_int(arg(0)))
            call.answered.add(queue)
            emit.add(rec("answered", at, agent_id=member))
            if member is not None:
                self._agent_busy(emit, member, callid, at)
        elif verb == "ABANDON":
            ensure_offered(_as_int(arg(2)))
            emit.add(rec("abandoned", at))
            self._close(callid, queue)
        elif verb in EXIT_VERBS:
            ensure_offered(_as_int(arg(EXIT_VERBS[verb])))
            emit.add(rec("exited", at))
            self._close(callid, queue)
        else:  # COMPLETE* and transfers: the call with the agent is over
            i = 2 if verb in TRANSFER_VERBS else 0
            talk = _as_int(arg(i + 1))
            ensure_offered(_as_int(arg(i)), before=talk or 0)
            ensure_answered(talk)
            if verb in TRANSFER_VERBS:
                emit.add(rec("transferred", at, agent_id=member))
            emit.add(rec("ended", at, agent_id=member, talk_s=_int_or_text(arg(i + 1))))
            if member is not None:
                self._agent_free(emit, member, callid, at)
            self._close(callid, queue)
        return emit.items

    # -- agents ---------------------------------------------------------------------

    def _agent_line(self, emit: _Emitter, verb: str, member: str, queue: str | None, at: Any, arg: Any) -> None:
        state = self._agents.setdefault(member, _Agent())
        if verb in LOGIN_VERBS:
            if queue is not None:
                state.queues.add(queue)
            record: dict[str, Any] = {
                "type": "agent",
                "agent_id": member,
                "state": "login",
                "at": at,
            }
            if state.queues:
                record["queues"] = sorted(state.queues)
            emit.add(record)
            state.last = ("login", None)
            if verb == "ADDMEMBER" and (arg(0) or "").upper() == "PAUSED":
                state.paused, state.reason = True, None
            self._agent_settle(emit, member, state, at)
        elif verb in LOGOUT_VERBS:
            if verb == "REMOVEMEMBER" and queue is not None:
                state.queues.discard(queue)
                if state.queues:  # still a member elsewhere: not logged out
                    return
            emit.add({"type": "agent", "agent_id": member, "state": "logout", "at": at})
            del self._agents[member]
        elif verb in PAUSE_VERBS:
            reason = arg(0) or None
            state.paused, state.reason = True, reason
            self._agent_settle(emit, member, state, at)
        else:
            state.paused, state.reason = False, None
            self._agent_settle(emit, member, state, at)

    def _agent_busy(self, emit: _Emitter, member: str, callid: str, at: Any) -> None:
        state = self._agents.setdefault(member, _Agent())
        state.calls.add(callid)
        self._agent_state(emit, member, state, at, "busy", None)

    def _agent_free(self, emit: _Emitter, member: str, callid: str, at: Any) -> None:
        state = self._agents.setdefault(member, _Agent())
        state.calls.discard(callid)
        self._agent_settle(emit, member, state, at)

    def _agent_settle(self, emit: _Emitter, member: str, state: _Agent, at: Any) -> None:
        """Emit ready / not_ready unless the agent is still on a call."""
        if state.calls:
            return
        if state.paused:
            self._agent_state(emit, member, state, at, "not_ready", state.reason)
        else:
            self._agent_state(emit, member, state, at, "ready", None)

    @staticmethod
    def _agent_state(emit: _Emitter, member: str, state: _Agent, at: Any, name: str, reason: str | None) -> None:
        if state.last == (name, reason):
            return
        state.last = (name, reason)
        record: dict[str, Any] = {"type": "agent", "agent_id": member, "state": name, "at": at}
        if reason is not None:
            record["reason"] = reason
        emit.add(record)

    # -- helpers --------------------------------------------------------------------

    def _close(self, callid: str, queue: str) -> None:
        call = self._calls.get(callid)
        if call is not None:
            call.offered.discard(queue)
            call.answered.discard(queue)

    def _forget(self) -> None:
        if not self._calls:
            return
        newest = max(c.seen for c in self._calls.values())
        for callid in [k for k, c in self._calls.items() if newest - c.seen > _FORGET_AFTER_S]:
            del self._calls[callid]

    def _at(self, stamp: str) -> int | float | str | None:
        try:
            value = float(stamp)
        except ValueError:
            try:
                local = datetime.fromisoformat(stamp)
            except ValueError:
                return None
            if local.tzinfo is None:
                local = local.replace(tzinfo=self.tz)
            return local.isoformat()
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return int(value) if value.is_integer() else value

    def _dead(self, position: str, text: str, reason: str) -> DeadLetter:
        self.stats["dead:" + reason.split(":")[0].split(" '")[0]] += 1
        return DeadLetter(self.source, position, mask_phone_like(text), reason)


def _epoch(at: Any) -> float:
    if isinstance(at, (int, float)):
        return float(at)
    try:
        return datetime.fromisoformat(at).timestamp()
    except (TypeError, ValueError):
        return 0.0


class _Emitter:
    __slots__ = ("position", "raw", "items")

    def __init__(self, position: str, raw: str) -> None:
        self.position, self.raw = position, raw
        self.items: list[Item] = []

    def add(self, record: dict[str, Any]) -> None:
        self.items.append(Parsed(self.position, self.raw, record))


def parse_queue_log(lines: Iterable[tuple[str, str]], source: str = "queue_log", options: Any = None) -> Iterator[Item]:
    """Registry entry: ``options`` may give ``timezone`` and a ``stats`` Counter."""
    opts = dict(options or {})
    parser = QueueLogParser(source, timezone=opts.get("timezone") or "UTC")
    try:
        yield from parser.parse(lines)
    finally:
        if isinstance(opts.get("stats"), Counter):
            opts["stats"].update(parser.stats)
