"""The terminal wallboard of `callpulse demo`: a rich table built from a snapshot.

Pure: ``render(snapshot, window)`` returns a renderable; the CLI owns the screen.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.console import Group
from rich.table import Table
from rich.text import Text

from metrics.kpi.snapshot import KpiSnapshot, QueueSnapshot


def _fmt_pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.0f}s" if v < 120 else f"{v / 60:.1f}m"


def _style(ok: bool | None) -> str:
    return "" if ok is None else ("bold green" if ok else "bold white on red")


def _cell(text: str, ok: bool | None) -> Text:
    return Text(text, style=_style(ok))


def _row(q: QueueSnapshot, window: str) -> list[Text]:
    k = q.windows.get(window)
    t = q.targets
    enough = k is not None and k.offered >= t.min_calls
    sl, asa, ab = (k.service_level, k.asa_s, k.abandon_rate) if k else (None, None, None)
    agents = {s: 0 for s in ("ready", "busy", "wrap", "not_ready")}
    for (state, _), n in q.agents.items():
        if state in agents:
            agents[state] += n
    return [
        Text(q.queue, style="bold"),
        _cell(str(q.calls_waiting), None),
        _cell(_fmt_s(q.oldest_wait_s), None if q.oldest_wait_s is None else q.oldest_wait_s <= t.oldest_wait_s),
        _cell(_fmt_pct(sl), None if sl is None or not enough else sl >= t.service_level),
        _cell(_fmt_s(asa), None if asa is None or not enough else asa <= t.asa_s),
        _cell(_fmt_pct(ab), None if ab is None or not enough else ab <= t.abandon_rate),
        Text(f"{k.offered if k else 0}/{k.answered if k else 0}/{k.abandoned if k else 0}"),
        Text(f"{agents['ready']}/{agents['busy']}/{agents['wrap']}/{agents['not_ready']}"),
    ]


def render(snapshot: KpiSnapshot, window: str = "15m", status: str = "", tz: str = "UTC") -> Group:
    title = "callpulse wallboard"
    if snapshot.watermark:
        local = snapshot.watermark.astimezone(ZoneInfo(tz))
        title += f" — window {window}, as of {local:%Y-%m-%d %H:%M:%S} {tz}"
    table = Table(title=title, expand=True)
    for name in (
        "queue",
        "waiting",
        "oldest wait",
        "service level",
        "ASA",
        "abandon rate",
        "offered/answered/abandoned",
        "agents ready/busy/wrap/not ready",
    ):
        table.add_column(name, justify="left" if name == "queue" else "right")
    for q in sorted(snapshot.queues.values(), key=lambda q: q.queue):
        table.add_row(*_row(q, window))
    return Group(table, Text(status, style="dim"))
