"""Amazon Connect contact records (CTRs) → native ``cdr`` records.

Input: one contact record per line (Kinesis stream / JSON lines), a JSON array of
them (S3 export, possibly pretty-printed over many lines), or several objects
concatenated on one line (Firehose writes them without a separator).

Mapping (field meanings from the Connect "data model for contact records" page):

- A contact is used when ``Channel`` is ``VOICE``, ``InitiationMethod`` is
  ``INBOUND``, ``TRANSFER`` or ``QUEUE_TRANSFER`` and it has a ``Queue`` with an
  ``EnqueueTimestamp``. Others (outbound, callback, API, monitor, disconnect flows,
  chat/task, contacts that never queued) are not queue calls: they are skipped and
  counted in ``stats`` under ``skipped:<why>``, never dead-lettered.
- ``call_id`` = ``InitialContactId`` (or ``ContactId`` if none): Connect makes a new
  contact per transfer, and DESIGN keys a call that visits several queues by one
  call id and the queue. (A second visit of the *same* queue within one chain has
  the same key and is deduplicated; the first visit counts.)
- ``queue`` = ``Queue.Name``; ``offered_at`` = ``Queue.EnqueueTimestamp``.
- With ``Agent.ConnectedToAgentTimestamp``: ``answered`` at it, ``ended_at`` =
  ``DisconnectTimestamp``, ``agent_id`` = ``Agent.Username`` (else ``Agent.ARN``),
  ``talk_s`` = ``AgentInteractionDuration``, ``hold_s`` = ``CustomerHoldDuration``,
  ``wrap_s`` = ``AfterContactWorkDuration``; ``transferred`` when the agent passed
  the contact on (``NextContactId`` or ``TransferCompletedTimestamp`` present).
- Without an agent the contact left the queue at ``Queue.DequeueTimestamp`` (the
  ``ended_at`` of the cdr; ``DisconnectTimestamp`` if missing): ``abandoned`` when
  the customer hung up (``DisconnectReason`` ``CUSTOMER_DISCONNECT`` or absent, and
  no onward contact), else ``exited`` (moved on by a flow: queue transfer,
  voicemail, timeout, ``CONTACT_FLOW_DISCONNECT``...).
- ``caller`` = ``CustomerEndpoint.Address``.
- Times are re-written as ISO 8601 with an explicit ``+00:00`` offset.
- Connect delivers a record at least once, and again when it changes; the store's
  cdr key dedupes repeats (DESIGN), so no ``LastUpdateTimestamp`` logic here.

Broken JSON, a used contact without ``ContactId`` or with unreadable times → dead
letter with a reason (caller-like digit runs masked).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from pipeline.core.pii import mask_phone_like
from pipeline.core.records import DeadLetter, Parsed

Item = Parsed | DeadLetter

QUEUE_CALL_METHODS = frozenset({"INBOUND", "TRANSFER", "QUEUE_TRANSFER"})
ABANDON_REASONS = frozenset({"", "CUSTOMER_DISCONNECT"})
_MAX_PENDING = 8 * 1024 * 1024  # a multi-line JSON value larger than this is broken
_decoder = json.JSONDecoder()


class ContactRecordParser:
    """Parses CTR text line by line; ``stats`` counts used, skipped and dead contacts."""

    kind = "contact record"  # what one JSON object is, for dead letters

    def __init__(self, source: str = "connect") -> None:
        self.source = source
        self.stats: Counter[str] = Counter()

    def parse(self, lines: Iterable[tuple[str, str]]) -> Iterator[Item]:
        buffer: list[str] = []
        start = ""
        for position, line in lines:
            if not buffer and not line.strip():
                continue
            if buffer and not buffer[0].lstrip().startswith("[") and line.startswith("{"):
                # a new top-level object while an object was still open: the open one
                # was cut short (JSON lines); a pretty-printed object's inner lines
                # are indented, an array's items are judged with the whole array
                alone, alone_error = _decode_all(line)
                if alone_error is None and alone:
                    yield self._dead(start, "\n".join(buffer), "truncated JSON")
                    buffer = []
            if not buffer:
                start = position
            buffer.append(line)
            text = "\n".join(buffer)
            values, error = _decode_all(text)
            if error is None:
                buffer = []
                for value in values:
                    yield from self._value(start, text, value)
            elif error == "incomplete" and len(text) < _MAX_PENDING:
                continue  # a JSON value spread over several lines
            else:
                buffer = []
                for value in values:
                    yield from self._value(start, text, value)
                yield self._dead(start, text, f"broken JSON: {error}")
        if buffer:
            text = "\n".join(buffer)
            yield self._dead(start, text, "truncated JSON at end of input")

    def _value(self, position: str, raw: str, value: Any) -> Iterator[Item]:
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from self._value(f"{position}[{i}]", raw, item)
            return
        if not isinstance(value, dict):
            yield self._dead(position, raw, f"not a {self.kind}: JSON {type(value).__name__}")
            return
        try:
            items = list(self.records(position, value))
        except Exception as exc:  # never crash on input
            items = [self._dead(position, raw, f"adapter error: {type(exc).__name__}: {exc}")]
        yield from items

    def records(self, position: str, value: Mapping[str, Any]) -> Iterator[Item]:
        """What one JSON object becomes; a subclass reading another system's JSON
        documents (pipeline/ingest/adapters/freeswitch.py) replaces this."""
        item = self.contact(position, value)
        if item is not None:
            yield item

    def contact(self, position: str, ctr: Mapping[str, Any]) -> Item | None:
        """One contact record → a cdr (``Parsed``), ``None`` if skipped, or a dead letter."""
        raw = json.dumps(ctr, separators=(",", ":"), sort_keys=True)
        contact_id = ctr.get("ContactId")
        if not isinstance(contact_id, str) or not contact_id:
            return self._dead(position, raw, "contact record without ContactId")
        channel = str(ctr.get("Channel") or "VOICE").upper()
        method = str(ctr.get("InitiationMethod") or "").upper()
        queue: Mapping[str, Any] | None = ctr["Queue"] if isinstance(ctr.get("Queue"), dict) else None
        if channel != "VOICE":
            self._skip(f"channel {channel}")
            return None
        if method not in QUEUE_CALL_METHODS:
            self._skip(f"initiation {method or 'missing'}")
            return None
        if queue is None or not queue.get("EnqueueTimestamp"):
            self._skip("never queued")
            return None
        name = queue.get("Name") or queue.get("ARN")
        if not name:
            return self._dead(position, raw, "queued contact without Queue.Name")

        agent: Mapping[str, Any] = ctr["Agent"] if isinstance(ctr.get("Agent"), dict) else {}
        times: dict[str, str | None] = {}
        for key, value in (
            ("offered_at", queue.get("EnqueueTimestamp")),
            ("dequeued", queue.get("DequeueTimestamp")),
            ("answered_at", agent.get("ConnectedToAgentTimestamp")),
            ("disconnected", ctr.get("DisconnectTimestamp")),
        ):
            if value in (None, ""):
                times[key] = None
                continue
            iso = _iso(value)
            if iso is None:
                return self._dead(position, raw, f"unreadable time {key}={str(value)[:40]!r}")
            times[key] = iso

        record: dict[str, Any] = {
            "type": "cdr",
            "call_id": ctr.get("InitialContactId") or contact_id,
            "queue": name,
            "offered_at": times["offered_at"],
        }
        endpoint = ctr.get("CustomerEndpoint")
        caller = endpoint.get("Address") if isinstance(endpoint, dict) else None
        if caller:
            record["caller"] = caller
        onward = bool(ctr.get("NextContactId") or ctr.get("TransferCompletedTimestamp"))
        if times["answered_at"] is not None:
            ended = times["disconnected"] or times["dequeued"]
            if ended is None:
                return self._dead(position, raw, "answered contact without DisconnectTimestamp")
            record.update(outcome="answered", answered_at=times["answered_at"], ended_at=ended)
            agent_id = agent.get("Username") or agent.get("ARN")
            if agent_id:
                record["agent_id"] = agent_id
            for field, key in (
                ("talk_s", "AgentInteractionDuration"),
                ("hold_s", "CustomerHoldDuration"),
                ("wrap_s", "AfterContactWorkDuration"),
            ):
                if agent.get(key) is not None:
                    record[field] = agent[key]
            record["transferred"] = onward
            self.stats["answered"] += 1
        else:
            ended = times["dequeued"] or times["disconnected"]
            if ended is None:
                return self._dead(position, raw, "queued contact without Dequeue/Disconnect time")
            reason = str(ctr.get("DisconnectReason") or "").upper()
            outcome = "abandoned" if (reason in ABANDON_REASONS and not onward) else "exited"
            record.update(outcome=outcome, ended_at=ended)
            self.stats[outcome] += 1
        return Parsed(position, raw, record)

    def _skip(self, why: str) -> None:
        self.stats["skipped:" + why] += 1
        return None

    def _dead(self, position: str, raw: str, reason: str) -> DeadLetter:
        self.stats["dead"] += 1
        return DeadLetter(self.source, position, mask_phone_like(raw), reason)


def _decode_all(text: str) -> tuple[list[Any], str | None]:
    """Every JSON value in ``text``; error ``"incomplete"`` if it stops mid-value."""
    values: list[Any] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            return values, None
        try:
            value, i = _decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(text.rstrip()):
                return values, "incomplete"
            return values, f"{exc.msg} at char {exc.pos}"
        values.append(value)


def _iso(value: Any) -> str | None:
    """A CTR timestamp (``2019-08-01T12:00:00Z``, or epoch seconds) as ISO with offset."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).isoformat()
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:  # CTR times are UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def parse_contact_records(
    lines: Iterable[tuple[str, str]], source: str = "connect", options: Any = None
) -> Iterator[Item]:
    """Registry entry: ``options`` may give a ``stats`` Counter to receive the counts."""
    return run_counted(ContactRecordParser(source), lines, options)


class CountingParser(Protocol):
    """An adapter's parser: items from lines, and what it counted."""

    stats: Counter[str]

    def parse(self, lines: Iterable[tuple[str, str]]) -> Iterator[Item]: ...


def run_counted(parser: CountingParser, lines: Iterable[tuple[str, str]], options: Any) -> Iterator[Item]:
    """``parser`` over ``lines``; its counts go to ``options["stats"]`` (a Counter) when it finishes."""
    opts = dict(options or {})
    try:
        yield from parser.parse(lines)
    finally:
        if isinstance(opts.get("stats"), Counter):
            opts["stats"].update(parser.stats)
