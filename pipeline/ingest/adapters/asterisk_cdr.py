"""Asterisk CDR CSV with the RTP quality a dialplan copied into it → native ``quality`` records.

Asterisk sets ``RTPAUDIOQOS`` (and ``RTPAUDIOQOSBRIDGED`` for the bridged channel) on
hangup, with ``RTPAUDIOQOSJITTER``, ``RTPAUDIOQOSLOSS`` and ``RTPAUDIOQOSRTT`` (and their
``…BRIDGED`` twins) beside it; a dialplan or ``cdr_custom`` template copies them into the
CDR, often with the MES values. The export is a CSV with a header naming the standard CDR
columns plus any of those variables (case and ``_`` ignored: ``RTPAUDIOQOS``,
``rtp_audio_qos``, ``RTPAUDIOQOSJITTERBRIDGED``), optionally ``rxmes``, ``txmes``. The
calls themselves come from the queue_log (``--format asterisk``), whose call id is the
caller channel's ``uniqueid``, so this adapter gives quality only, keyed to it:

- ``call_id`` = ``uniqueid``; ``at`` = ``end`` (a local time in ``[site] timezone``,
  ``YYYY-MM-DD HH:MM:SS``); ``trunk`` = the endpoint of ``channel``
  (``PJSIP/carrier-a-0000001f`` → ``carrier-a``).
- The plain variables are leg ``caller``, the ``…BRIDGED`` ones leg ``agent``.
  ``RTPAUDIOQOS``'s ``ssrc=…;themssrc=…;lp=…;rxjitter=…;rxcount=…;txjitter=…;txcount=…;rlp=…;rtt=…``
  (jitter and rtt in seconds; lp and rlp are packet counts) gives ``in``:
  ``jitter_ms`` = rxjitter × 1000, ``loss_pct`` = lp ÷ (rxcount + lp) × 100; ``out``:
  ``jitter_ms`` = txjitter × 1000, ``loss_pct`` = rlp ÷ txcount × 100 (the packets the
  far end reported lost of those sent); both ``rtt_ms`` = rtt × 1000 (0: no RTCP, not
  measured). A direction with no packets (rxcount / txcount 0) gives no record.
- ``RTPAUDIOQOSJITTER`` (``minrxjitter=…;maxrxjitter=…;avgrxjitter=…;stdevrxjitter=…;
  reported_minjitter=…;…;reported_avgjitter=…;…``, seconds) and ``RTPAUDIOQOSRTT``
  (``minrtt=…;maxrtt=…;avgrtt=…;stdevrtt=…``, seconds) are means over the whole call,
  where RTPAUDIOQOS holds the last value at hangup, so they are the better figure:
  ``in`` ``jitter_ms`` = avgrxjitter × 1000 (the jitter Asterisk measured on what it
  received), ``out`` ``jitter_ms`` = reported_avgjitter × 1000 (what the far end reported
  by RTCP of what Asterisk sent), ``rtt_ms`` = avgrtt × 1000 on both. An average of 0
  (Asterisk's value before any sample or RTCP report) or an absent one leaves
  RTPAUDIOQOS's figure. Min, max and stdev are not used.
- ``RTPAUDIOQOSLOSS`` is not used: its ``…rxlost`` figures are packets lost per RTCP
  report interval and its ``reported_…lost`` ones the far end's cumulative lost count,
  neither with the packets expected, so no percentage can be made of them; loss comes
  from RTPAUDIOQOS (lp, rlp and the packet counts).
- MES (``rxmes`` / ``txmes``, 0–100, in the QoS string since Asterisk 20 or in columns
  of their own) is ``vendor_score`` with ``vendor_score_kind`` ``asterisk_mes``: a
  media experience score, never a MOS. ``0`` means not computed.

A value that is no number is passed on as it is, so validation dead-letters that
record naming the field. A row of the wrong width, without ``uniqueid`` or with an
unreadable ``end``, or a QoS text with no ``key=value`` pair → dead letter (naming the
variable and leg). Rows without any QoS text are counted ``skipped:no RTPAUDIOQOS``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.core.pii import mask_phone_like
from pipeline.core.records import DeadLetter, Parsed
from pipeline.ingest.adapters.connect import run_counted
from pipeline.ingest.adapters.quality_values import finite_number

Item = Parsed | DeadLetter

MES_KIND = "asterisk_mes"
# The hangup variables read, by their column key (RTPAUDIOQOSLOSS is not: see above), and
# each leg's column suffix.
VARIABLES = ("rtpaudioqos", "rtpaudioqosjitter", "rtpaudioqosrtt")
LEGS = (("caller", ""), ("agent", "bridged"))
_CHANNEL = re.compile(r"^[^/]+/(.+?)(-[0-9a-f]{6,})?$")


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "")


def parse_qos(text: str) -> dict[str, str] | None:
    """``k=v;k=v`` as a dict; None when there is no pair at all."""
    pairs = [part.split("=", 1) for part in text.strip().split(";") if "=" in part]
    return {k.strip().lower(): v.strip() for k, v in pairs} or None


def _scaled(text: str | None, factor: float) -> float | str | None:
    """A number × ``factor``; the text itself when it is no number; None when absent."""
    if text is None or text == "":
        return None
    value = finite_number(text)
    return text if value is None else round(value * factor, 6)  # no 17.517000000000003 from 0.017517 s


def _share(lost: str | None, base: float | None) -> float | str | None:
    """lost ÷ base × 100; the lost text itself when it is no number."""
    if lost is None or lost == "" or base is None or base <= 0:
        return None
    value = finite_number(lost)
    return lost if value is None else value / base * 100


def _mes(text: str | None) -> float | str | None:
    value = _scaled(text, 1.0)
    return None if value == 0 else value


def _average(mean: str | None, fallback: str | None) -> str | None:
    """A whole-call mean unless it is absent or 0 (no sample yet), else the fallback text."""
    if mean is None or mean == "" or finite_number(mean) == 0:
        return fallback
    return mean


def qos_quality(
    qos: Mapping[str, str],
    rxmes: str | None = None,
    txmes: str | None = None,
    jitter: Mapping[str, str] | None = None,
    rtt: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The measures per direction (``in`` / ``out``) of one leg: its RTPAUDIOQOS text
    (``{}`` when absent) and, when present, its RTPAUDIOQOSJITTER and RTPAUDIOQOSRTT."""
    jitter, rtt = jitter or {}, rtt or {}
    rx, tx = finite_number(qos.get("rxcount")), finite_number(qos.get("txcount"))
    lp = finite_number(qos.get("lp"))
    rtt_ms = _scaled(_average(rtt.get("avgrtt"), qos.get("rtt")), 1000.0)
    out: dict[str, dict[str, Any]] = {}
    sides = (
        ("in", rx, _average(jitter.get("avgrxjitter"), qos.get("rxjitter")),
         _share(qos.get("lp"), None if rx is None else rx + (lp or 0)), qos.get("rxmes", rxmes)),
        ("out", tx, _average(jitter.get("reported_avgjitter"), qos.get("txjitter")),
         _share(qos.get("rlp"), tx), qos.get("txmes", txmes)),
    )  # fmt: skip
    for direction, packets, jitter_s, loss, mes in sides:
        if packets == 0:
            continue  # no media that way
        measures = {
            "jitter_ms": _scaled(jitter_s, 1000.0),
            "loss_pct": loss,
            "rtt_ms": None if rtt_ms == 0 else rtt_ms,
            "vendor_score": _mes(mes),
        }
        measures = {k: v for k, v in measures.items() if v is not None}
        if "vendor_score" in measures:
            measures["vendor_score_kind"] = MES_KIND
        if measures:
            out[direction] = measures
    return out


class AsteriskCdrReader:
    """Reads the CSV line by line; ``stats`` counts quality records, skipped and dead rows."""

    def __init__(self, source: str = "asterisk-cdr", timezone: str | None = None) -> None:
        self.source = source
        self.zone = ZoneInfo(timezone or "UTC")
        self.stats: Counter[str] = Counter()

    def parse(self, lines: Iterable[tuple[str, str]]) -> Iterator[Item]:
        header: list[str] | None = None
        for position, line in lines:
            if not line.strip():
                continue
            row = next(csv.reader([line]))
            if header is None:
                header = [_key(c) for c in row]
                continue
            if len(row) != len(header):
                yield self._dead(position, line, f"expected {len(header)} columns, got {len(row)}")
                continue
            yield from self._row(position, line, dict(zip(header, row, strict=True)))

    def _row(self, position: str, line: str, row: Mapping[str, str]) -> Iterator[Item]:
        legs = []
        for leg, suffix in LEGS:
            texts = {var: text for var in VARIABLES if (text := row.get(var + suffix, "").strip())}
            if texts:
                legs.append((leg, suffix, texts))
        if not legs:
            self.stats["skipped:no RTPAUDIOQOS"] += 1
            return
        call_id = row.get("uniqueid", "").strip()
        if not call_id:
            yield self._dead(position, line, "CDR without uniqueid")
            return
        try:
            at = datetime.strptime(row.get("end", "").strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=self.zone)
        except ValueError:
            yield self._dead(position, line, f"unreadable end time: {row.get('end', '')[:40]!r}")
            return
        match = _CHANNEL.match(row.get("channel", "").strip())
        raw = mask_phone_like(line)
        for leg, suffix, texts in legs:
            parsed = {var: parse_qos(text) for var, text in texts.items()}
            bad = next((var for var, qos in parsed.items() if qos is None), None)
            if bad is not None:
                name = (bad + suffix).upper()
                yield self._dead(position, line, f"unreadable {name} of leg {leg}: {texts[bad][:40]!r}")
                continue
            mes = (row.get("rxmes"), row.get("txmes")) if leg == "caller" else (None, None)
            measured = qos_quality(
                parsed.get("rtpaudioqos") or {}, *mes, parsed.get("rtpaudioqosjitter"), parsed.get("rtpaudioqosrtt")
            )
            for direction, measures in measured.items():
                record: dict[str, Any] = {"type": "quality", "call_id": call_id, "leg": leg, "direction": direction}
                record.update(at=at.isoformat(), **measures)
                if match and leg == "caller":
                    record["trunk"] = match.group(1)
                self.stats["quality"] += 1
                yield Parsed(position, raw, record)

    def _dead(self, position: str, raw: str, reason: str) -> DeadLetter:
        self.stats["dead"] += 1
        return DeadLetter(self.source, position, mask_phone_like(raw), reason)


def parse_asterisk_cdr(
    lines: Iterable[tuple[str, str]], source: str = "asterisk-cdr", options: Any = None
) -> Iterator[Item]:
    """Registry entry: ``options`` may give ``timezone`` and a ``stats`` Counter for the counts."""
    return run_counted(AsteriskCdrReader(source, dict(options or {}).get("timezone")), lines, options)
