"""The HTML report: one self-contained file, charts as inline SVG (no scripts, CDN or network).

Pure: ``render(...)`` returns the text; the CLI writes it. Charts: service level and
volume by interval, the abandon curve (share abandoned by wait time), the AHT
distribution, agent scorecards with QA scores, then the report's table.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

import polars as pl

W, H, PAD = 760, 240, 44
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}p.meta{color:#5b6472;margin:0 0 16px}
table{border-collapse:collapse;font-size:12px}th,td{padding:3px 8px;border-bottom:1px solid #e3e6ea;text-align:right}
th{background:#f3f5f7}td.l,th.l{text-align:left}svg{background:#fbfcfd;border:1px solid #e3e6ea}
.axis{stroke:#8a93a0;stroke-width:1}.grid{stroke:#e3e6ea;stroke-width:1}.lbl{font-size:10px;fill:#5b6472}
.bar{fill:#9ec5fe}.bar2{fill:#f1aeb5}
.line{fill:none;stroke:#0d6efd;stroke-width:2}.tgt{stroke:#dc3545;stroke-dasharray:4 3}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    return str(value)


def _axes(y_max: float, y_fmt: str, x_labels: Sequence[tuple[float, str]]) -> list[str]:
    parts = [
        f'<line class="axis" x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}"/>',
        f'<line class="axis" x1="{PAD}" y1="10" x2="{PAD}" y2="{H - PAD}"/>',
    ]
    for i in range(5):
        v = y_max * i / 4
        y = _y(v, y_max)
        parts.append(f'<line class="grid" x1="{PAD}" y1="{y:.1f}" x2="{W - 10}" y2="{y:.1f}"/>')
        parts.append(f'<text class="lbl" x="{PAD - 4}" y="{y + 3:.1f}" text-anchor="end">{_e(y_fmt.format(v))}</text>')
    for x, label in x_labels:
        parts.append(f'<text class="lbl" x="{x:.1f}" y="{H - PAD + 14}" text-anchor="middle">{_e(label)}</text>')
    return parts


def _y(v: float, y_max: float) -> float:
    return H - PAD - (v / y_max if y_max else 0) * (H - PAD - 10)


def _svg(title: str, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">'
        f"<title>{_e(title)}</title>{''.join(parts)}</svg>"
    )


def sl_volume_chart(centre: pl.DataFrame, target: float | None = 0.8) -> str:
    """Bars: calls offered per interval (abandoned in red); line: service level (right scale 0..1)."""
    if centre.height == 0:
        return "<p>No calls in this period.</p>"
    n = centre.height
    step = (W - PAD - 20) / n
    offered = centre.get_column("offered").to_list()
    abandoned = centre.get_column("abandoned").to_list()
    sl = centre.get_column("service_level").to_list()
    y_max = max(max(offered), 1)
    every = max(1, n // 10)
    labels = [
        (PAD + step * (i + 0.5), t.strftime("%d %H:%M"))
        for i, t in enumerate(centre.get_column("interval_start").to_list())
        if i % every == 0
    ]
    parts = _axes(float(y_max), "{:,.0f}", labels)
    for i, (o, a) in enumerate(zip(offered, abandoned, strict=True)):
        x = PAD + step * i + 1
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{_y(o, y_max):.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{H - PAD - _y(o, y_max):.1f}"><title>offered {o}</title></rect>'
        )
        parts.append(
            f'<rect class="bar2" x="{x:.1f}" y="{_y(a, y_max):.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{H - PAD - _y(a, y_max):.1f}"><title>abandoned {a}</title></rect>'
        )
    points = [f"{PAD + step * (i + 0.5):.1f},{_y(v, 1.0):.1f}" for i, v in enumerate(sl) if v is not None]
    if points:
        parts.append(f'<polyline class="line" points="{" ".join(points)}"><title>service level</title></polyline>')
    if target is not None:
        parts.append(
            f'<line class="tgt" x1="{PAD}" y1="{_y(target, 1.0):.1f}" x2="{W - 10}" y2="{_y(target, 1.0):.1f}"/>'
        )
    parts.append(
        f'<text class="lbl" x="{W - 12}" y="20" text-anchor="end">line: service level (0–100 %), '
        f"dashed: target; bars: offered / abandoned</text>"
    )
    return _svg("Service level and volume by interval", parts)


def line_chart(frame: pl.DataFrame, x: str, y: str, title: str, y_fmt: str = "{:.0%}", y_max: float = 1.0) -> str:
    if frame.height == 0 or frame.get_column(y).drop_nulls().len() == 0:
        return "<p>No data.</p>"
    xs = frame.get_column(x).to_list()
    ys = frame.get_column(y).to_list()
    x_max = max(xs) or 1
    top = max(y_max, max(v for v in ys if v is not None))
    sx = lambda v: PAD + (v / x_max) * (W - PAD - 20)  # noqa: E731
    labels = [(sx(v), f"{v:g}s") for i, v in enumerate(xs) if i % max(1, len(xs) // 10) == 0]
    parts = _axes(top, y_fmt, labels)
    pts = " ".join(f"{sx(a):.1f},{_y(b, top):.1f}" for a, b in zip(xs, ys, strict=True) if b is not None)
    parts.append(f'<polyline class="line" points="{pts}"/>')
    return _svg(title, parts)


def bar_chart(frame: pl.DataFrame, x: str, y: str, title: str, x_unit: str = "s") -> str:
    if frame.height == 0:
        return "<p>No data.</p>"
    xs, ys = frame.get_column(x).to_list(), frame.get_column(y).to_list()
    y_max = max(max(ys), 1)
    step = (W - PAD - 20) / len(xs)
    labels = [(PAD + step * (i + 0.5), f"{v:g}{x_unit}") for i, v in enumerate(xs) if i % max(1, len(xs) // 10) == 0]
    parts = _axes(float(y_max), "{:,.0f}", labels)
    for i, v in enumerate(ys):
        parts.append(
            f'<rect class="bar" x="{PAD + step * i + 1:.1f}" y="{_y(v, y_max):.1f}" '
            f'width="{max(step - 2, 1):.1f}" height="{H - PAD - _y(v, y_max):.1f}"><title>{v}</title></rect>'
        )
    return _svg(title, parts)


def scorecards(agents: pl.DataFrame) -> str:
    """Agent scorecards: handled, AHT, occupancy and QA score, with inline bars."""
    if agents.height == 0:
        return "<p>No agent activity.</p>"
    rows = []
    for r in agents.iter_rows(named=True):
        occ, qa = r["occupancy"], r["qa_score"]
        rows.append(
            f'<tr><td class="l">{_e(r["agent_id"])}</td><td>{r["handled"]}</td><td>{_fmt(r["aht_s"])}</td>'
            f"<td>{_mini_bar(occ, 1.0, '{:.0%}')}</td><td>{_mini_bar(qa, 100.0, '{:.1f}')}</td>"
            f"<td>{r['qa_count']}</td></tr>"
        )
    return (
        '<table><tr><th class="l">agent</th><th>handled</th><th>AHT s</th><th>occupancy</th>'
        f"<th>QA score</th><th>QA evals</th></tr>{''.join(rows)}</table>"
    )


def _mini_bar(value: float | None, full: float, fmt: str) -> str:
    if value is None:
        return "–"
    w = max(0.0, min(1.0, value / full)) * 80
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="130" height="12"><rect x="0" y="1" width="80" height="10" '
        f'fill="#e9ecef"/><rect x="0" y="1" width="{w:.1f}" height="10" fill="#0d6efd"/>'
        f'<text x="86" y="10" class="lbl">{_e(fmt.format(value))}</text></svg>'
    )


def table(frame: pl.DataFrame, max_rows: int = 2000) -> str:
    head = "".join(f'<th class="{"l" if frame.schema[c] == pl.String else ""}">{_e(c)}</th>' for c in frame.columns)
    body = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(f'<td class="{"l" if isinstance(v, str) else ""}">{_e(_fmt(v))}</td>' for v in row)
        body.append(f"<tr>{cells}</tr>")
    more = f"<p>… {frame.height - max_rows} more rows (use --format csv)</p>" if frame.height > max_rows else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def render(
    title: str,
    meta: str,
    kind: str,
    main: pl.DataFrame,
    centre: pl.DataFrame,
    curve: pl.DataFrame,
    aht: pl.DataFrame,
    agents: pl.DataFrame,
    sl_target: float | None = 0.8,
) -> str:
    """The whole report as one HTML document."""
    sections = [
        "<h2>Service level and volume by interval</h2>",
        sl_volume_chart(centre, sl_target),
        "<h2>Abandon curve: share of calls abandoned by wait time</h2>",
        line_chart(curve, "wait_s", "abandoned_share", "Abandon curve"),
        "<h2>AHT distribution (handled calls per handle-time minute)</h2>",
        bar_chart(aht, "bin_start_s", "calls", "AHT distribution"),
        "<h2>Agent scorecards</h2>",
        scorecards(agents),
        f"<h2>{_e(kind.capitalize())} report</h2>",
        table(main),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{_e(title)}</h1><p class="meta">{_e(meta)}</p>{"".join(sections)}</body></html>\n'
    )
