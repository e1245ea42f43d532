"""FreeSWITCH CDRs (``mod_json_cdr`` JSON, ``mod_xml_cdr`` XML) → native ``cdr`` and ``quality`` records.

Input: JSON CDRs one per line, pretty-printed or in an array (the JSON reader of
connect.py), or XML CDR documents (``<cdr>…</cdr>``, one or many, with or without
``<?xml?>`` lines). Only ``variables`` are read; every value is a string (XML values
URL-encoded, as mod_xml_cdr writes them).

The call (mod_callcenter's variables):

- A CDR without ``cc_queue`` is no queue call: skipped, counted ``skipped:no cc_queue``.
- The member leg (``cc_side`` ``member`` or absent) is the call: ``call_id`` = ``uuid``,
  ``queue`` = ``cc_queue`` without ``@domain``, ``offered_at`` = ``cc_queue_joined_epoch``,
  ``answered_at`` = ``cc_queue_answered_epoch``, ``ended_at`` =
  ``cc_queue_terminated_epoch`` / ``cc_queue_canceled_epoch`` / ``end_epoch`` (first
  present), ``agent_id`` = ``cc_agent`` without ``@domain``, ``caller`` =
  ``caller_id_number``. Unanswered: ``abandoned`` when ``cc_cancel_reason`` is
  ``BREAK_OUT`` (the caller hung up) or absent, else ``exited`` (``TIMEOUT``,
  ``NO_AGENT_TIMEOUT``, ``EXIT_WITH_KEY``).
- The agent leg (``cc_side`` ``agent``) gives quality only, of the member's call
  (``cc_member_session_uuid``), leg ``agent``.

Quality, per direction (``rtp_audio_in_*`` → ``in``, ``rtp_audio_out_*`` → ``out``):
``mos`` ← ``_mos``; ``r_factor`` ← ``_quality_percentage`` (FreeSWITCH's E-model R);
``loss_pct`` ← ``_jitter_loss_rate`` × 100 (a fraction), else ``_flaw_total`` ÷
(``_packet_count`` + ``_flaw_total``) × 100 (flaws are the packets found missing);
``jitter_ms`` ← √``_jitter_max_variance`` (the largest variance of the packets'
inter-arrival time, ms², so its standard deviation in ms: FreeSWITCH writes no
RFC 3550 jitter into the CDR). ``at`` = ``end_epoch``, ``trunk`` = ``sip_gateway_name``.
FreeSWITCH writes ``0.00`` for what it never measured: a MOS, R or variance of 0 is
"not measured" (a MOS is at least 1); a direction with ``_packet_count`` 0 carried no
media and gives no record, nor does one with no measure at all (counted ``no quality``).
``_skip_packet_count`` (packets the jitter buffer chose to skip) and ``_min_variance``
are not quality measures here. A value that is no number is passed on as it is, so
validation dead-letters that quality record with the field's name; the call stays.

Broken JSON/XML, a member CDR without ``uuid`` or ``cc_queue_joined_epoch``, or an
unreadable epoch → dead letter with a reason (caller-like digit runs masked).
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from pipeline.core.pii import mask_phone_like
from pipeline.core.records import DeadLetter, Parsed
from pipeline.ingest.adapters.connect import ContactRecordParser, run_counted
from pipeline.ingest.adapters.quality_values import finite_number

Item = Parsed | DeadLetter

EXIT_REASONS = frozenset({"TIMEOUT", "NO_AGENT_TIMEOUT", "EXIT_WITH_KEY"})
_XML_START = re.compile(r"<cdr[\s>]")
_MAX_XML = 8 * 1024 * 1024  # an XML document larger than this is broken


def _measured(text: str | None) -> str | float | None:
    """A FreeSWITCH measure: None if absent or 0 ("not measured"), the float, or the
    garbage text as it is (validation names it)."""
    if text is None or not text.strip():
        return None
    value = finite_number(text)
    if value is None:
        return text
    return value if value != 0 else None


def _epoch(text: str | None) -> float | str | None:
    """An epoch-seconds variable: None if absent or 0 (FreeSWITCH's "never"), else the number;
    the text when unreadable."""
    if text is None or not text.strip():
        return None
    value = finite_number(text)
    if value is None:
        return text
    return value if value > 0 else None


def _local(name: str | None) -> str | None:
    return name.split("@", 1)[0] if name else name


def quality_of(variables: Mapping[str, str], direction: str) -> dict[str, Any] | None:
    """The quality measures of one direction (``in`` / ``out``), or None without any."""
    p = f"rtp_audio_{direction}_"
    packets = finite_number(variables.get(p + "packet_count"))
    if packets == 0:
        return None  # no media this way
    out: dict[str, Any] = {}
    mos = _measured(variables.get(p + "mos"))
    if mos is not None:
        out["mos"] = mos
    r = _measured(variables.get(p + "quality_percentage"))
    if r is not None:
        out["r_factor"] = r
    rate = variables.get(p + "jitter_loss_rate")
    flaws = variables.get(p + "flaw_total")
    if rate is not None and rate.strip():
        fraction = finite_number(rate)
        out["loss_pct"] = rate if fraction is None else fraction * 100
    elif flaws is not None and flaws.strip():
        lost = finite_number(flaws)
        if lost is None:
            out["loss_pct"] = flaws
        elif packets is not None and packets + lost > 0:
            out["loss_pct"] = lost / (packets + lost) * 100
    variance = _measured(variables.get(p + "jitter_max_variance"))
    if isinstance(variance, float):
        out["jitter_ms"] = math.sqrt(variance) if variance > 0 else variance  # negative: validation refuses it
    elif variance is not None:
        out["jitter_ms"] = variance
    return out or None


class FreeSwitchParser(ContactRecordParser):
    """FreeSWITCH CDRs, JSON or XML; ``stats`` counts used, skipped and dead CDRs."""

    kind = "FreeSWITCH CDR"

    def __init__(self, source: str = "freeswitch") -> None:
        super().__init__(source)

    def parse(self, lines: Iterable[tuple[str, str]]) -> Iterator[Item]:
        iterator = iter(lines)
        for position, line in iterator:
            if not line.strip():
                continue
            first = [(position, line)]
            if line.lstrip().startswith("<"):
                yield from self._xml([*first, *iterator])
            else:
                yield from super().parse([*first, *iterator])
            return

    def _xml(self, lines: Iterable[tuple[str, str]]) -> Iterator[Item]:
        buffer: list[str] = []
        start = ""
        for position, line in lines:
            if not buffer:
                match = _XML_START.search(line)
                if match is None:
                    if line.strip() and not line.lstrip().startswith("<?xml"):
                        yield self._dead(position, line, "not a FreeSWITCH XML CDR line")
                    continue
                start, line = position, line[match.start() :]
            buffer.append(line)
            text = "\n".join(buffer)
            end = text.find("</cdr>")
            if end < 0 and len(text) < _MAX_XML:
                continue
            buffer = []
            if end < 0:
                yield self._dead(start, text[:2000], "XML CDR too large or never closed")
                continue
            yield from self._document(start, text[: end + len("</cdr>")])
            rest = text[end + len("</cdr>") :].strip()
            if rest and _XML_START.search(rest) is None:
                yield self._dead(start, rest, "text after </cdr>")
            elif rest:
                buffer = [rest[_XML_START.search(rest).start() :]]  # type: ignore[union-attr]
        if buffer:
            yield self._dead(start, "\n".join(buffer), "XML CDR cut short at end of input")

    def _document(self, position: str, text: str) -> Iterator[Item]:
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            yield self._dead(position, text, f"broken XML: {exc}")
            return
        node = root.find("variables")
        variables = {} if node is None else {c.tag: unquote(c.text or "") for c in node}
        try:
            items = list(self.records(position, {"variables": variables}, raw=text))
        except Exception as exc:  # never crash on input
            items = [self._dead(position, text, f"adapter error: {type(exc).__name__}: {exc}")]
        yield from items

    def records(self, position: str, value: Mapping[str, Any], raw: str | None = None) -> Iterator[Item]:
        variables = value.get("variables")
        text = raw if raw is not None else _json_text(value)
        if not isinstance(variables, dict):
            yield self._dead(position, text, "CDR without variables")
            return
        v = {str(k): str(x) for k, x in variables.items() if x is not None}
        queue = _local(v.get("cc_queue"))
        if not queue:
            self._skip("no cc_queue")
            return
        agent_leg = v.get("cc_side") == "agent"
        call_id = v.get("cc_member_session_uuid") if agent_leg else (v.get("uuid") or v.get("call_uuid"))
        if not call_id:
            missing = "cc_member_session_uuid" if agent_leg else "uuid"
            yield self._dead(position, text, f"{v.get('cc_side') or 'member'} CDR without {missing}")
            return
        times = {
            "offered_at": _epoch(v.get("cc_queue_joined_epoch")),
            "answered_at": _epoch(v.get("cc_queue_answered_epoch")),
            "ended_at": next(
                (t for k in ("cc_queue_terminated_epoch", "cc_queue_canceled_epoch", "end_epoch")
                 if (t := _epoch(v.get(k))) is not None),
                None,
            ),
        }  # fmt: skip
        bad = [k for k, t in times.items() if isinstance(t, str)]
        if bad:
            yield self._dead(position, text, f"unreadable epoch: {bad[0]}")
            return
        at = _epoch(v.get("end_epoch")) or times["ended_at"] or times["offered_at"]
        if not agent_leg:
            if times["offered_at"] is None:
                yield self._dead(position, text, "queue call without cc_queue_joined_epoch")
                return
            yield Parsed(position, text, self._cdr(call_id, queue, times, v))
        for direction in ("in", "out"):
            measures = quality_of(v, direction)
            if measures is None:
                self.stats["no quality"] += 1
                continue
            leg = "agent" if agent_leg else "caller"
            record: dict[str, Any] = {"type": "quality", "call_id": call_id, "leg": leg, "direction": direction}
            record.update(at=at, **measures)
            if v.get("sip_gateway_name"):
                record["trunk"] = v["sip_gateway_name"]
            self.stats["quality"] += 1
            # a quality record carries no caller to scrub its raw text by (validation does
            # that for the cdr): the CDR's numbers are masked here, never kept in the clear
            yield Parsed(position, mask_phone_like(text), record)

    def _cdr(self, call_id: str, queue: str, times: Mapping[str, Any], v: Mapping[str, str]) -> dict[str, Any]:
        record: dict[str, Any] = {"type": "cdr", "call_id": call_id, "queue": queue, "offered_at": times["offered_at"]}
        if v.get("caller_id_number"):
            record["caller"] = v["caller_id_number"]
        if times["answered_at"] is not None:
            record.update(outcome="answered", answered_at=times["answered_at"])
            if v.get("cc_agent"):
                record["agent_id"] = _local(v["cc_agent"])
        else:
            reason = v.get("cc_cancel_reason", "").upper()
            record["outcome"] = "exited" if reason in EXIT_REASONS else "abandoned"
        record["ended_at"] = times["ended_at"] or times["answered_at"] or times["offered_at"]
        self.stats[record["outcome"]] += 1
        return record


def _json_text(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def parse_freeswitch(
    lines: Iterable[tuple[str, str]], source: str = "freeswitch", options: Any = None
) -> Iterator[Item]:
    """Registry entry: ``options`` may give a ``stats`` Counter to receive the counts."""
    return run_counted(FreeSwitchParser(source), lines, options)
