"""Prometheus alert and recording rules, generated from settings.

Targets are exported per queue (``callpulse_target_*``, ``callpulse_min_calls``), so the
rules are generic: each KPI rule compares the rolling-window gauge with its target
``on(queue)`` and only where the window had at least ``min_calls`` offered calls. A KPI
that is undefined (no calls) has no sample, and a missing target or ``min_calls``
series means no match: rules never fire on absence.

The service level is also treated as an SLO (error budget = 1 - target) with the
multiwindow, multi-burn-rate alerts of the SRE workbook (ch. 5), computed from the
counters through one recording rule per window.

Several workers (one consumer group) each serve ``/metrics`` with the same names, and
each queue is owned by one worker at a time. So the alerts never read a per-worker
series: they read recording rules that take the ``instance`` label away. A per-queue
gauge is the owner's value (``owner_record``: during a hand-over both workers may
export it for a scrape or two, and the aggregation takes the side that breaches, so a
stale copy never hides a breach); counters and the wait histogram are summed by queue
over the job (``rate_record``), and ratios and percentiles come from those sums. An
alert therefore fires once per queue with one worker or three, and a hand-over does not
restart its ``for:``.

``build_rules`` gives the rule file as a dict, ``render_rules`` as YAML text
(deterministic), ``write_rules`` is the only function that touches the disk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metrics.export import names
from metrics.kpi import definitions
from metrics.kpi.definitions import Kpi
from pipeline.core.config import RUNBOOK_URL, runbook_base

SERVICE_LEVEL_LOW = "CallpulseServiceLevelLow"
ABANDON_RATE_HIGH = "CallpulseAbandonRateHigh"
ASA_HIGH = "CallpulseAsaHigh"
OLDEST_WAIT_HIGH = "CallpulseOldestWaitHigh"
BUDGET_BURN = "CallpulseServiceLevelBudgetBurn"
NO_EVENTS = "CallpulseNoEvents"
WATERMARK_LAG = "CallpulseWatermarkLag"
DEAD_LETTERS_RISING = "CallpulseDeadLettersRising"
EXPORTER_DOWN = "CallpulseExporterDown"
UNDERSTAFFED = "CallpulseUnderstaffed"
POOR_QUALITY_HIGH = "CallpulsePoorQualityHigh"
QUALITY_ALERTS: tuple[str, ...] = (POOR_QUALITY_HIGH,)


def alert_name(kpi: Kpi) -> str:
    """``CallpulseServiceLevelLow``, ``CallpulseAsaHigh`` ...: the KPI's name and the side it breaches on."""
    return "Callpulse" + kpi.name.title().replace("_", "") + ("Low" if kpi.higher_is_better else "High")


KPI_ALERTS: tuple[str, ...] = tuple(alert_name(k) for k in definitions.QUEUE_KPIS)
PIPELINE_ALERTS: tuple[str, ...] = (NO_EVENTS, WATERMARK_LAG, DEAD_LETTERS_RISING, EXPORTER_DOWN)

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_JOB = re.compile(r"[A-Za-z0-9_.:-]+")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def duration_seconds(text: str) -> int:
    """Seconds in a Prometheus duration made of d/h/m/s parts (``"1h30m"`` -> 5400)."""
    m = _DURATION.fullmatch(text)
    if not text or m is None:
        raise ValueError(f"not a duration (use d, h, m, s parts such as '5m'): {text!r}")
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def owner_record(metric: names.MetricName, op: str) -> str:
    """Recording rule holding a per-queue gauge of the queue's owner, aggregated with ``op`` over workers."""
    level = "job_queue_window" if "window" in metric.labels else "job_queue"
    return f"{level}:{metric.name}:{op}"


def rate_record(what: str, window: str, level: str = "job_queue") -> str:
    """Recording rule holding a per-second rate (or a ratio/mean/quantile of rates) summed over workers."""
    return f"{level}:callpulse_{what}{window}"


def error_ratio_record(window: str) -> str:
    """Name of the recording rule holding the service-level error ratio over ``window``."""
    return f"job_queue:callpulse_sl_errors:ratio_rate{window}"


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """How long a condition must hold before the alert fires, and its severity."""

    for_: str = "5m"
    severity: str = "warning"


@dataclass(frozen=True, slots=True)
class BurnWindows:
    """Fire when the error budget burns faster than ``factor`` over both windows."""

    long: str
    short: str
    factor: float


@dataclass(frozen=True, slots=True)
class AlertSettings:
    window: str = "15m"
    job: str = "callpulse"
    runbook_url: str = RUNBOOK_URL
    """Base of the runbook pages: each alert links to ``<runbook_url>/<AlertName>.md``."""
    service_level: RuleSettings = RuleSettings("5m", "critical")
    abandon_rate: RuleSettings = RuleSettings("5m", "warning")
    asa: RuleSettings = RuleSettings("5m", "warning")
    oldest_wait: RuleSettings = RuleSettings("1m", "critical")
    understaffed: RuleSettings = RuleSettings("5m", "warning")
    no_events_for: str = "10m"
    no_events: RuleSettings = RuleSettings("0s", "critical")
    max_watermark_lag: str = "5m"
    watermark_lag: RuleSettings = RuleSettings("2m", "warning")
    dead_letter_rate: float = 0.1
    """Dead letters per second (summed per source) above which the alert fires."""
    dead_letter_rate_window: str = "5m"
    dead_letters: RuleSettings = RuleSettings("5m", "warning")
    exporter_down: RuleSettings = RuleSettings("2m", "critical")
    poor_quality: RuleSettings = RuleSettings("5m", "warning")
    quality_window: str = "15m"
    """The range the poor share of quality reports is taken over (counter increases)."""
    burn_page: tuple[BurnWindows, ...] = (
        BurnWindows("1h", "5m", 14.4),
        BurnWindows("6h", "30m", 6.0),
    )
    burn_ticket: tuple[BurnWindows, ...] = (BurnWindows("3d", "6h", 1.0),)
    rate_windows: tuple[str, ...] = names.WINDOWS
    """Windows of the counter rates summed over workers (and their ratios and percentiles)."""
    burn_page_severity: str = "critical"
    burn_ticket_severity: str = "warning"
    extra_labels: tuple[tuple[str, str], ...] = ()
    """Labels added to every alert, e.g. ``(("team", "contact-centre"),)``."""

    def __post_init__(self) -> None:
        if self.window not in names.WINDOWS:
            raise ValueError(f"window must be one of {names.WINDOWS}: {self.window!r}")
        if not _JOB.fullmatch(self.job):
            raise ValueError(f"job must match {_JOB.pattern}: {self.job!r}")
        durations = [self.no_events_for, self.max_watermark_lag, self.dead_letter_rate_window, self.quality_window]
        rules = [
            *(getattr(self, k.name) for k in definitions.QUEUE_KPIS),
            self.understaffed,
            self.no_events,
            self.watermark_lag,
            self.dead_letters,
            self.exporter_down,
            self.poor_quality,
        ]
        durations += [r.for_ for r in rules]
        durations += list(self.rate_windows)
        for b in (*self.burn_page, *self.burn_ticket):
            durations += [b.long, b.short]
            if b.factor <= 0 or not 0 < duration_seconds(b.short) < duration_seconds(b.long):
                raise ValueError(f"burn windows need factor > 0 and 0 < short < long: {b}")
        for d in durations:
            duration_seconds(d)
        if not all(r.severity for r in rules) or not self.burn_page_severity or not self.burn_ticket_severity:
            raise ValueError("severities must not be empty")
        if self.dead_letter_rate < 0:
            raise ValueError("dead_letter_rate must be >= 0")
        runbook_base(self.runbook_url, "runbook_url")
        for key, _ in self.extra_labels:
            if key in ("severity", "component") or not _LABEL.fullmatch(key):
                raise ValueError(f"extra label name not allowed: {key!r}")


# --- PromQL building blocks -------------------------------------------------------


def _sel(metric: names.MetricName | str, s: AlertSettings, **labels: str) -> str:
    """A selector on ``metric`` (or a recording rule's name) restricted to the exporter's job:
    rules rendered for two jobs into one Prometheus must never read each other's records."""
    matchers = {"job": s.job, **labels}
    inner = ",".join(f"{k}={json.dumps(v)}" for k, v in matchers.items())
    name = metric if isinstance(metric, str) else metric.name
    return f"{name}{{{inner}}}"


def _target(metric: names.MetricName, s: AlertSettings) -> str:
    return f"max by (queue) ({_sel(metric, s)})"


def _enough_calls(s: AlertSettings) -> str:
    offered = _sel(owner_record(names.WINDOW_OFFERED, "max"), s, window=s.window)
    return f"{offered}\n  >= on (queue)\nmax by (queue) ({_sel(names.MIN_CALLS, s)})"


def _worst(kpi: Kpi) -> str:
    """The aggregation that keeps the breaching side when two workers briefly export one queue."""
    return "min" if kpi.higher_is_better else "max"


def _owner_rule(metric: names.MetricName, op: str, s: AlertSettings) -> dict[str, Any]:
    by = ", ".join(("job", *(label for label in metric.labels if label in ("queue", "window"))))
    return {"record": owner_record(metric, op), "expr": f"{op} by ({by}) ({_sel(metric, s)})"}


def _target_text(metric: names.MetricName, s: AlertSettings, fmt: str) -> str:
    """Template that looks up the queue's target at alert time (``unknown`` if absent)."""
    query = f'max by (queue) ({metric.name}{{job="{s.job}",queue=%q}})'
    return (
        f"{{{{ with printf `{query}` $labels.queue | query }}}}"
        f"{{{{ . | first | value | {fmt} }}}}{{{{ else }}}}unknown{{{{ end }}}}"
    )


def _alert(
    name: str,
    expr: str,
    rule: RuleSettings,
    s: AlertSettings,
    component: str,
    summary: str,
    description: str,
    severity: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"alert": name, "expr": expr}
    if duration_seconds(rule.for_) > 0:
        out["for"] = rule.for_
    out["labels"] = {
        "severity": severity or rule.severity,
        "component": component,
        **dict(sorted(s.extra_labels)),
    }
    out["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{s.runbook_url.rstrip('/')}/{name}.md",
    }
    return out


# --- rule groups --------------------------------------------------------------------


def _kpi_rule(s: AlertSettings, kpi: Kpi) -> dict[str, Any]:
    series = names.KPI_SERIES[kpi.name]
    fmt = "humanizePercentage" if kpi.unit == definitions.RATIO else "humanizeDuration"
    owner = owner_record(series.value, _worst(kpi))
    value = _sel(owner, s, window=s.window) if kpi.rolling else _sel(owner, s)
    op, side, bound = ("<", "below", "at least") if kpi.higher_is_better else (">", "above", "at most")
    expr = f"{value}\n  {op} on (queue) group_left ()\n{_target(series.target, s)}"
    if kpi.gated:
        expr = f"(\n{_indent(expr)}\n)\nand on (queue)\n(\n{_indent(_enough_calls(s))}\n)"
    over = f" over the last {s.window}" if kpi.rolling else " now"  # "Oldest wait of queue q now is ..."
    what = kpi.long_label
    summary = f"{what} {side} target on queue {{{{ $labels.queue }}}}"
    description = (
        f"{what} of queue {{{{ $labels.queue }}}}{over} is {{{{ $value | {fmt} }}}}; "
        f"target: {bound} {_target_text(series.target, s, fmt)}."
    )
    rule: RuleSettings = getattr(s, kpi.name)  # AlertSettings has one field per KPI, by name
    return _alert(alert_name(kpi), expr, rule, s, "kpi", summary, description)


def _kpi_group(s: AlertSettings) -> dict[str, Any]:
    # Recording rules first: rules in a group run in order, so the alerts read this evaluation's values.
    owners = [_owner_rule(names.KPI_SERIES[k.name].value, _worst(k), s) for k in definitions.QUEUE_KPIS]
    owners.append(_owner_rule(names.WINDOW_OFFERED, "max", s))
    return {"name": "callpulse-kpi", "rules": [*owners, *(_kpi_rule(s, kpi) for kpi in definitions.QUEUE_KPIS)]}


def _staffing_group(s: AlertSettings) -> dict[str, Any]:
    # Needed minus logged in (every state but logout): the shortfall is the alert's value.
    # A queue whose need is unknown (too few calls, no handle time) has no sample: no alert.
    # Agents per (queue, state, reason) come from the queue's owner (max over workers), then
    # are summed over the states.
    logged_in = owner_record(names.AGENTS, "sum")
    records = [
        _owner_rule(names.AGENTS_NEEDED, "max", s),
        {
            "record": logged_in,
            "expr": f"sum by (job, queue) (max by (job, queue, state, reason) ({_sel(names.AGENTS, s)}))",
        },
    ]
    needed = _sel(owner_record(names.AGENTS_NEEDED, "max"), s)
    expr = f"(\n  {needed}\n  - on (job, queue)\n  {_sel(logged_in, s)}\n) > 0"
    needed = _target_text(names.AGENTS_NEEDED, s, 'printf "%.0f"')
    rule = _alert(
        UNDERSTAFFED,
        expr,
        s.understaffed,
        s,
        "kpi",
        "Queue {{ $labels.queue }} is understaffed by {{ $value }}",
        f"Queue {{{{ $labels.queue }}}} needs {needed} agents to meet its service-level target at the "
        "current arrival rate and handle time, and {{ $value }} fewer are logged in.",
    )
    return {"name": "callpulse-staffing", "rules": [*records, rule]}


def burn_windows(s: AlertSettings) -> tuple[str, ...]:
    """Every window the burn-rate alerts need a recorded error ratio for, shortest first."""
    ws = {w for b in (*s.burn_page, *s.burn_ticket) for w in (b.long, b.short)}
    return tuple(sorted(ws, key=lambda w: (duration_seconds(w), w)))


def _error_ratio_expr(s: AlertSettings, window: str) -> str:
    by = "sum by (job, queue)"
    in_sl = f"{by} (rate({_sel(names.CALLS_ANSWERED_IN_SL_TOTAL, s)}[{window}]))"
    offered = f"{by} (rate({_sel(names.CALLS_OFFERED_TOTAL, s)}[{window}]))"
    # A queue whose in-SL counter does not exist yet (nothing answered in time) has
    # an error ratio of 1, not none; a window without offered calls has none.
    return (
        "clamp_min(\n"
        "  1 - (\n"
        f"    ({in_sl}\n"
        f"      or on (job, queue) 0 * {offered})\n"
        "    / on (job, queue)\n"
        f"    ({offered} > 0)\n"
        "  ),\n"
        "  0\n"
        ")"
    )


def _recording_rules(s: AlertSettings) -> list[dict[str, Any]]:
    return [{"record": error_ratio_record(w), "expr": _error_ratio_expr(s, w)} for w in burn_windows(s)]


COUNTER_RATES: tuple[tuple[str, names.MetricName], ...] = (
    ("calls_offered:rate", names.CALLS_OFFERED_TOTAL),
    ("calls_answered:rate", names.CALLS_ANSWERED_TOTAL),
    ("calls_abandoned:rate", names.CALLS_ABANDONED_TOTAL),
    ("calls_answered_in_sl:rate", names.CALLS_ANSWERED_IN_SL_TOTAL),
)
WAIT_QUANTILE = 0.9


def _share(part: str, whole: str) -> str:
    # A part whose counter does not exist yet (nothing abandoned so far) is 0, not absent;
    # a window without offered calls has no ratio.
    return f"(\n  {part}\n  or on (job, queue) 0 * {whole}\n)\n/ on (job, queue)\n({whole} > 0)"


def _aggregate_group(s: AlertSettings) -> dict[str, Any]:
    """Counters and the wait histogram summed by queue over the job's workers, per window,
    and the ratios, mean and percentile taken from those sums (never averaged ratios)."""
    out: list[dict[str, Any]] = []
    wait = names.WAIT.name
    for w in s.rate_windows:
        for what, metric in COUNTER_RATES:
            out.append({"record": rate_record(what, w), "expr": f"sum by (job, queue) (rate({_sel(metric, s)}[{w}]))"})
        buckets = rate_record("call_wait_seconds_bucket:rate", w, "job_queue_le")
        out += [
            {
                "record": buckets,
                "expr": f"sum by (job, queue, le) (rate({wait}_bucket{{job={json.dumps(s.job)}}}[{w}]))",
            },
            *(
                {
                    "record": rate_record(f"call_wait_seconds_{part}:rate", w),
                    "expr": f"sum by (job, queue) (rate({wait}_{part}{{job={json.dumps(s.job)}}}[{w}]))",
                }
                for part in ("sum", "count")
            ),
        ]
        offered = rate_record("calls_offered:rate", w)
        count = rate_record("call_wait_seconds_count:rate", w)
        out += [
            {
                "record": rate_record("service_level:ratio_rate", w),
                "expr": _share(rate_record("calls_answered_in_sl:rate", w), offered),
            },
            {
                "record": rate_record("abandoned:ratio_rate", w),
                "expr": _share(rate_record("calls_abandoned:rate", w), offered),
            },
            {
                "record": rate_record("call_wait_seconds:mean_rate", w),
                "expr": f"{rate_record('call_wait_seconds_sum:rate', w)}\n/ on (job, queue)\n({count} > 0)",
            },
            {
                "record": rate_record(f"call_wait_seconds:p{WAIT_QUANTILE * 100:.0f}_rate", w),
                "expr": f"histogram_quantile({WAIT_QUANTILE:g}, {buckets})",
            },
        ]
    return {"name": "callpulse-aggregate", "rules": out}


def _burn_expr(s: AlertSettings, pairs: Sequence[BurnWindows]) -> str:
    budget = f"(1 - {_target(names.TARGET_SERVICE_LEVEL, s)})"

    def burn(window: str, factor: float) -> str:
        return f"{_sel(error_ratio_record(window), s)} / on (queue) group_left () {budget} > {factor:g}"

    parts = [f"(\n  {burn(p.long, p.factor)}\nand on (job, queue)\n  {burn(p.short, p.factor)}\n)" for p in pairs]
    return "\nor\n".join(parts)


def _burn_text(pairs: Sequence[BurnWindows]) -> str:
    return " or ".join(f"{p.factor:g}x over {p.long} and {p.short}" for p in pairs)


def _slo_group(s: AlertSettings) -> dict[str, Any]:
    # Recording rules and the alerts reading them share a group: rules in a group run
    # in order, so an alert always sees the error ratios of the same evaluation.
    rules = _recording_rules(s)
    for kind, pairs, severity in (
        ("page", s.burn_page, s.burn_page_severity),
        ("ticket", s.burn_ticket, s.burn_ticket_severity),
    ):
        if not pairs:
            continue
        rules.append(
            _alert(
                BUDGET_BURN,
                _burn_expr(s, pairs),
                RuleSettings("0s", severity),
                s,
                "kpi",
                f"Queue {{{{ $labels.queue }}}} is burning its service-level error budget ({kind})",
                "Queue {{ $labels.queue }} burns its service-level error budget (1 - target) "
                'at {{ printf "%.1f" $value }}x the sustainable rate over the long window; '
                f"{kind} threshold: {_burn_text(pairs)}.",
            )
        )
    return {"name": "callpulse-slo", "rules": rules}


def _pipeline_group(s: AlertSettings) -> dict[str, Any]:
    up = f"up{{job={json.dumps(s.job)}}}"
    ingested = _sel(names.EVENTS_INGESTED_TOTAL, s)
    quiet = s.no_events_for
    no_events = (
        f"sum by (job) (increase({ingested}[{quiet}])) == 0\n"
        "or\n"
        "(\n"
        f"  max by (job) ({up} offset {quiet}) == 1\n"
        f"  and on (job) max by (job) ({up}) == 1\n"
        f"  unless on (job) count by (job) ({ingested})\n"
        ")"
    )
    lag = f"{_sel(names.WATERMARK_LAG, s)} > {duration_seconds(s.max_watermark_lag)}"
    dead = (
        f"sum by (job, source) (rate({_sel(names.DEAD_LETTERS_TOTAL, s)}"
        f"[{s.dead_letter_rate_window}])) > {s.dead_letter_rate:g}"
    )
    down = f"{up} == 0\nor\nabsent({up})"
    return {
        "name": "callpulse-pipeline",
        "rules": [
            _alert(
                NO_EVENTS,
                no_events,
                s.no_events,
                s,
                "pipeline",
                "callpulse stored no events for " + quiet,
                f"No record was stored by job {{{{ $labels.job }}}} in the last {quiet}; "
                "KPIs and KPI alerts are stale.",
            ),
            _alert(
                WATERMARK_LAG,
                lag,
                s.watermark_lag,
                s,
                "pipeline",
                "callpulse watermark lags the wall clock",
                "The watermark of {{ $labels.instance }} is {{ $value | humanizeDuration }} "
                f"behind the wall clock (threshold {s.max_watermark_lag}).",
            ),
            _alert(
                DEAD_LETTERS_RISING,
                dead,
                s.dead_letters,
                s,
                "pipeline",
                "Records from {{ $labels.source }} go to dead letters",
                "{{ $value | humanize }} records/s from source {{ $labels.source }} were sent "
                f"to dead letters over the last {s.dead_letter_rate_window} "
                f"(threshold {s.dead_letter_rate:g}/s).",
            ),
            _alert(
                EXPORTER_DOWN,
                down,
                s.exporter_down,
                s,
                "pipeline",
                "callpulse exporter is down",
                "Prometheus cannot scrape job {{ $labels.job }}"
                "{{ with $labels.instance }} on {{ . }}{{ end }}; KPIs are not monitored.",
            ),
        ],
    }


def _quality_group(s: AlertSettings) -> dict[str, Any]:
    """The poor-quality alert, from counters (summed across workers): the share of quality
    reports counted over the window that were poor, against the queue's target, on at least
    min_calls reports (a handful of calls says little about a trunk)."""
    w = s.quality_window
    reports = f"sum by (queue) (increase({_sel(names.QUALITY_REPORTS_TOTAL, s)}[{w}]))"
    poor = f"sum by (queue) (increase({_sel(names.QUALITY_POOR_REPORTS_TOTAL, s)}[{w}]))"
    expr = (
        f"(\n  {poor}\n  / on (queue)\n  ({reports} > 0)\n)\n"
        f"  > on (queue)\n{_target(names.TARGET_POOR_QUALITY, s)}\n"
        f"and on (queue)\n(\n  {reports}\n  >= on (queue)\n  max by (queue) ({_sel(names.MIN_CALLS, s)})\n)"
    )
    fmt = "humanizePercentage"
    description = (
        f"{{{{ $value | {fmt} }}}} of the quality reports of queue {{{{ $labels.queue }}}} over the last {w} "
        "were poor (MOS, loss or jitter past the queue's thresholds); "
        f"target: at most {_target_text(names.TARGET_POOR_QUALITY, s, fmt)}."
    )
    rule = _alert(
        POOR_QUALITY_HIGH,
        expr,
        s.poor_quality,
        s,
        "kpi",
        "Calls on queue {{ $labels.queue }} sound poor",
        description,
    )
    return {"name": "callpulse-quality", "rules": [rule]}


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.split("\n"))


def build_rules(settings: AlertSettings | None = None) -> dict[str, Any]:
    """The Prometheus rule file (``{"groups": [...]}``) for ``settings``."""
    s = settings or AlertSettings()
    return {
        "groups": [
            _slo_group(s),
            _kpi_group(s),
            _staffing_group(s),
            _quality_group(s),
            _pipeline_group(s),
            _aggregate_group(s),
        ],
    }


# --- YAML text ----------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_./:-]*$")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        if not re.fullmatch(r"-?\d+(\.\d+)?(e[-+]?\d+)?", text):
            raise ValueError(f"cannot emit number {value!r}")
        return text
    if not isinstance(value, str):
        raise TypeError(f"cannot emit {type(value).__name__}")
    if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def _block_ok(text: str) -> bool:
    """Whether a multi-line string round-trips exactly as a ``|-`` literal block."""
    lines = text.split("\n")
    return (
        "\n" in text
        and not text.endswith("\n")
        and lines[0][:1] not in (" ", "")
        and all(line == line.rstrip() and line.isprintable() for line in lines)
    )


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists, strings, numbers and booleans (keys kept in order)."""
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return pad + "{}\n"
        out = []
        for key, item in value.items():
            head = f"{pad}{_scalar(str(key))}:"
            out.append(_item(head, item, indent))
        return "".join(out)
    if isinstance(value, list | tuple):
        if not value:
            return pad + "[]\n"
        return "".join(_item(f"{pad}-", item, indent, in_list=True) for item in value)
    return pad + _scalar(value) + "\n"


def _item(head: str, item: Any, indent: int, in_list: bool = False) -> str:
    if isinstance(item, str) and _block_ok(item):
        body = _indent(item, " " * (indent + 2))
        return f"{head} |-\n{body}\n"
    if isinstance(item, Mapping | list | tuple) and item:
        if in_list and isinstance(item, Mapping):
            # "- key: value" with the rest of the mapping aligned under the first key.
            text = to_yaml(item, indent + 2)
            return head + " " + text[indent + 2 :]
        return head + "\n" + to_yaml(item, indent + 2)
    if isinstance(item, Mapping | list | tuple):
        return f"{head} {'{}' if isinstance(item, Mapping) else '[]'}\n"
    return f"{head} {_scalar(item)}\n"


HEADER = "# Generated by metrics.export.rules (callpulse); do not edit, regenerate instead.\n"


def render_rules(settings: AlertSettings | None = None) -> str:
    """The rule file as YAML text; the same settings always give the same text."""
    return HEADER + to_yaml(build_rules(settings))


def write_rules(path: Path | str, settings: AlertSettings | None = None) -> Path:
    """Write the rendered rule file to ``path`` and return the path."""
    p = Path(path)
    p.write_text(render_rules(settings), encoding="utf-8")
    return p
