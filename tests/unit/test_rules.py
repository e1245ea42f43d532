"""Pure tests of metrics.export.rules: the rule dict, its names, settings and the YAML text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.export import names, rules
from metrics.export.rules import AlertSettings, BurnWindows, RuleSettings, build_rules, render_rules

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = {m.name for m in names.ALL} | {
    f"{m.name}_{part}" for m in names.ALL if m.kind == "histogram" for part in ("bucket", "sum", "count")
}
NAME = re.compile(r"(?<![\w:])(callpulse_\w+)")
AGGREGATED_BY_QUEUE = re.compile(r"(max|sum) by \((job, )?queue\) \(((rate|increase)\()?$")


def _rules(settings: AlertSettings | None = None) -> list[dict]:
    return [r for g in build_rules(settings)["groups"] for r in g["rules"]]


def _alerts(settings: AlertSettings | None = None, name: str | None = None) -> list[dict]:
    return [r for r in _rules(settings) if "alert" in r and name in (None, r["alert"])]


def _all_text(rule: dict) -> str:
    return json.dumps(rule)


def test_every_metric_name_used_is_exported() -> None:
    records = {r["record"] for r in _rules() if "record" in r}
    for rule in _rules():
        text = _all_text(rule)
        for used in NAME.findall(text):
            assert used in EXPORTED, f"{used} in {rule.get('alert') or rule.get('record')}"
        for ref in re.findall(r"[\w]*:[\w:]+", rule["expr"]):
            assert ref in records, f"{ref} is not a recording rule"


def test_every_selector_is_exported_or_up() -> None:
    records = {r["record"] for r in _rules() if "record" in r}
    for rule in _rules():
        for selected in re.findall(r"([A-Za-z_][\w:]*)\{", rule["expr"]):
            assert selected in EXPORTED | records | {"up"}, selected


@pytest.mark.parametrize("group", ["callpulse-kpi", "callpulse-staffing", "callpulse-slo", "callpulse-quality"])
def test_queue_alerts_read_no_series_of_one_worker(group: str) -> None:
    """With several workers every series carries its worker's ``instance``: a queue alert that
    kept that label would fire once per worker exporting the queue (two during a hand-over)
    and restart its ``for:`` when the queue moves. Each exported series an alert selects
    must be aggregated by queue (targets are the same on every worker)."""
    (g,) = [g for g in build_rules()["groups"] if g["name"] == group]
    for rule in g["rules"]:
        if "alert" not in rule:
            continue
        for m in re.finditer(r"(callpulse_\w+)\{", rule["expr"]):
            assert m.group(1) in EXPORTED
            before = rule["expr"][: m.start()]
            assert AGGREGATED_BY_QUEUE.search(before), (rule["alert"], m.group(1))
        # Rules rendered for two jobs into one Prometheus must not read each other's records.
        for m in re.finditer(r"\w*:[\w:]+(\{[^}]*)?", rule["expr"]):
            assert (m.group(1) or "").startswith('{job="callpulse"'), (rule["alert"], m.group(0))


def test_per_queue_gauges_are_recorded_by_owner_and_counters_summed() -> None:
    recorded = {r["record"]: r["expr"] for r in _rules() if "record" in r}
    assert recorded["job_queue_window:callpulse_service_level_ratio:min"] == (
        'min by (job, queue, window) (callpulse_service_level_ratio{job="callpulse"})'
    )
    assert recorded["job_queue:callpulse_oldest_wait_seconds:max"] == (
        'max by (job, queue) (callpulse_oldest_wait_seconds{job="callpulse"})'
    )
    for w in names.WINDOWS:
        assert recorded[f"job_queue:callpulse_calls_offered:rate{w}"] == (
            f'sum by (job, queue) (rate(callpulse_calls_offered_total{{job="callpulse"}}[{w}]))'
        )
        assert recorded[f"job_queue:callpulse_call_wait_seconds:p90_rate{w}"] == (
            f"histogram_quantile(0.9, job_queue_le:callpulse_call_wait_seconds_bucket:rate{w})"
        )
    s = AlertSettings(rate_windows=("20s",))
    assert {r for r in (x.get("record", "") for x in _rules(s)) if r.endswith("rate20s")} >= {
        "job_queue:callpulse_calls_offered:rate20s",
        "job_queue:callpulse_service_level:ratio_rate20s",
    }


def test_one_alert_per_kpi_target() -> None:
    kpi_group = next(g for g in build_rules()["groups"] if g["name"] == "callpulse-kpi")
    assert [r["alert"] for r in kpi_group["rules"] if "alert" in r] == list(rules.KPI_ALERTS)
    for target in (names.TARGET_SERVICE_LEVEL, names.TARGET_ABANDON_RATE, names.TARGET_ASA, names.TARGET_OLDEST_WAIT):
        users = [r["alert"] for r in kpi_group["rules"] if target.name in r["expr"]]
        assert len(users) == 1, (target.name, users)


@pytest.mark.parametrize(
    ("alert", "kpi", "op"),
    [
        (rules.SERVICE_LEVEL_LOW, names.SERVICE_LEVEL, "<"),
        (rules.ABANDON_RATE_HIGH, names.ABANDON_RATE, ">"),
        (rules.ASA_HIGH, names.ASA, ">"),
    ],
)
def test_window_kpis_use_window_and_min_calls(alert: str, kpi: names.MetricName, op: str) -> None:
    (rule,) = _alerts(name=alert)
    assert f":{kpi.name}:" in rule["expr"] and f'{{job="callpulse",window="15m"}}\n    {op} on (queue)' in rule["expr"]
    assert names.MIN_CALLS.name in rule["expr"]
    assert f':{names.WINDOW_OFFERED.name}:max{{job="callpulse",window="15m"}}' in rule["expr"]


def test_oldest_wait_is_live_and_not_gated_by_min_calls() -> None:
    (rule,) = _alerts(name=rules.OLDEST_WAIT_HIGH)
    assert names.MIN_CALLS.name not in rule["expr"]
    assert "window" not in rule["expr"]


@pytest.mark.parametrize(
    ("alert", "for_", "severity"),
    [
        (rules.SERVICE_LEVEL_LOW, "5m", "critical"),
        (rules.ABANDON_RATE_HIGH, "5m", "warning"),
        (rules.ASA_HIGH, "5m", "warning"),
        (rules.OLDEST_WAIT_HIGH, "1m", "critical"),
        (rules.UNDERSTAFFED, "5m", "warning"),
        (rules.WATERMARK_LAG, "2m", "warning"),
        (rules.DEAD_LETTERS_RISING, "5m", "warning"),
        (rules.EXPORTER_DOWN, "2m", "critical"),
        (rules.POOR_QUALITY_HIGH, "5m", "warning"),
    ],
)
def test_defaults(alert: str, for_: str, severity: str) -> None:
    (rule,) = _alerts(name=alert)
    assert rule["for"] == for_
    assert rule["labels"]["severity"] == severity
    assert rule["annotations"]["runbook_url"] == f"docs/runbooks/{alert}.md"
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


def test_settings_change_for_severity_window_job_runbook() -> None:
    s = AlertSettings(
        window="1h",
        job="cp-prod",
        runbook_url="https://wiki.example.invalid/runbooks/",
        service_level=RuleSettings("10m", "warning"),
        oldest_wait=RuleSettings("0s", "critical"),
        extra_labels=(("team", "contact-centre"),),
    )
    (sl,) = _alerts(s, rules.SERVICE_LEVEL_LOW)
    assert sl["for"] == "10m"
    assert sl["labels"] == {"severity": "warning", "component": "kpi", "team": "contact-centre"}
    assert 'window="1h"' in sl["expr"] and 'window="15m"' not in sl["expr"]
    assert 'job="cp-prod"' in sl["expr"] and 'job=\\"cp-prod\\"' in json.dumps(sl)
    runbook = "https://wiki.example.invalid/runbooks/" + sl["alert"] + ".md"
    assert sl["annotations"]["runbook_url"] == runbook
    (ow,) = _alerts(s, rules.OLDEST_WAIT_HIGH)
    assert "for" not in ow
    (down,) = _alerts(s, rules.EXPORTER_DOWN)
    assert down["expr"] == 'up{job="cp-prod"} == 0\nor\nabsent(up{job="cp-prod"})'


ALL_ALERTS = {
    *rules.KPI_ALERTS,
    rules.BUDGET_BURN,
    rules.UNDERSTAFFED,
    *rules.QUALITY_ALERTS,
    *rules.PIPELINE_ALERTS,
}


def test_every_alert_links_to_its_runbook_page_in_the_repository() -> None:
    """The default runbook base is the repository's docs/runbooks: each generated alert's
    link resolves to a page whose title names the alert, and no page is left without one."""
    linked = {}
    for rule in _alerts():
        page = ROOT / rule["annotations"]["runbook_url"]
        assert page.is_file(), f"{rule['alert']}: no runbook page {page}"
        title = page.read_text(encoding="utf-8").splitlines()[0]
        assert title == f"# {rule['alert']}", (page.name, title)
        linked[rule["alert"]] = page
    assert set(linked) == ALL_ALERTS
    pages = {p for p in (ROOT / "docs" / "runbooks").glob("*.md") if p.name != "README.md"}
    assert pages == set(linked.values())


def test_every_runbook_page_has_its_sections() -> None:
    for alert in sorted(ALL_ALERTS):
        text = (ROOT / "docs" / "runbooks" / f"{alert}.md").read_text(encoding="utf-8")
        for heading in ("## What it means", "## First checks", "## Queries"):
            assert heading in text, (alert, heading)


def test_burn_rate_windows_are_recorded_and_paired() -> None:
    slo = next(g for g in build_rules()["groups"] if g["name"] == "callpulse-slo")
    records = {r["record"] for r in slo["rules"] if "record" in r}
    assert records == {rules.error_ratio_record(w) for w in ("5m", "30m", "1h", "6h", "3d")}
    page, ticket = _alerts(name=rules.BUDGET_BURN)
    assert page["labels"]["severity"] == "critical" and ticket["labels"]["severity"] == "warning"
    for rule in (page, ticket):
        for ref in re.findall(r"job_queue:callpulse_sl_errors:ratio_rate\w+", rule["expr"]):
            assert ref in records
    assert "ratio_rate1h" in page["expr"] and "> 14.4" in page["expr"]
    assert "ratio_rate30m" in page["expr"] and "> 6\n" in page["expr"]
    assert "ratio_rate3d" in ticket["expr"] and "> 1\n" in ticket["expr"]
    for r in slo["rules"]:
        if "record" in r:
            assert names.CALLS_ANSWERED_IN_SL_TOTAL.name in r["expr"]
            assert names.CALLS_OFFERED_TOTAL.name in r["expr"]


def test_burn_windows_follow_settings() -> None:
    s = AlertSettings(burn_page=(BurnWindows("2h", "10m", 10),), burn_ticket=())
    assert rules.burn_windows(s) == ("10m", "2h")
    burn = _alerts(s, rules.BUDGET_BURN)
    assert len(burn) == 1 and "> 10\n" in burn[0]["expr"]


@pytest.mark.parametrize("index", range(len(build_rules()["groups"])))
def test_recording_rules_precede_the_alerts_reading_them(index: int) -> None:
    group = build_rules()["groups"][index]
    kinds = ["record" if "record" in r else "alert" for r in group["rules"]]
    assert kinds == sorted(kinds, key=lambda k: k != "record")
    recorded_before: set[str] = set()
    for r in group["rules"]:
        for ref in re.findall(r"[\w]*:[\w:]+", r["expr"]):
            assert ref in recorded_before or ref not in {x.get("record") for x in group["rules"]}
        recorded_before.add(r.get("record", ""))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": "10m"},
        {"job": 'a"b'},
        {"no_events_for": "ten minutes"},
        {"service_level": RuleSettings("5x", "critical")},
        {"asa": RuleSettings("5m", "")},
        {"burn_page": (BurnWindows("5m", "1h", 14.4),)},
        {"dead_letter_rate": -1.0},
        {"extra_labels": (("severity", "x"),)},
        {"extra_labels": (("bad-name", "x"),)},
        {"job": "callpulse\n"},
        {"burn_ticket": (BurnWindows("3d", "0s", 1.0),)},
        {"runbook_url": ""},
        {"runbook_url": "javascript://x"},
        {"rate_windows": ("five minutes",)},
    ],
)
def test_bad_settings_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        AlertSettings(**kwargs)


def test_duration_seconds() -> None:
    assert rules.duration_seconds("90s") == 90
    assert rules.duration_seconds("1h30m") == 5400
    assert rules.duration_seconds("3d") == 259200
    with pytest.raises(ValueError):
        rules.duration_seconds("")


def test_render_is_deterministic() -> None:
    a = render_rules(AlertSettings())
    assert a == render_rules() == render_rules(AlertSettings())
    assert a.startswith(rules.HEADER)
    assert a.index("callpulse-slo") < a.index("callpulse-kpi") < a.index("callpulse-pipeline")


def test_write_rules(tmp_path: Path) -> None:
    path = rules.write_rules(tmp_path / "r.yml")
    assert path.read_text(encoding="utf-8") == render_rules()


# --- the tiny YAML emitter ----------------------------------------------------------


def test_yaml_shapes() -> None:
    doc = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {
                        "alert": "A",
                        "expr": "a > 1\nor\nb",
                        "for": "5m",
                        "labels": {"severity": "on"},
                        "x": 1.5,
                        "ok": True,
                    }
                ],
            },
            {"name": "empty", "rules": []},
        ],
        "e": {},
    }
    assert rules.to_yaml(doc) == (
        "groups:\n"
        "  - name: g\n"
        "    rules:\n"
        "      - alert: A\n"
        "        expr: |-\n"
        "          a > 1\n"
        "          or\n"
        "          b\n"
        '        for: "5m"\n'
        "        labels:\n"
        '          severity: "on"\n'
        "        x: 1.5\n"
        "        ok: true\n"
        "  - name: empty\n"
        "    rules: []\n"
        "e: {}\n"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("kpi", "kpi"),
        ("yes", '"yes"'),
        ("Off", '"Off"'),
        ("null", '"null"'),
        ("15m", '"15m"'),
        ("", '""'),
        ("a: b", '"a: b"'),
        ("#x", '"#x"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("https://h.example.invalid/x", "https://h.example.invalid/x"),
    ],
)
def test_yaml_scalars(value: str, text: str) -> None:
    assert rules._scalar(value) == text


def test_yaml_multiline_that_cannot_be_a_block_is_quoted() -> None:
    assert rules.to_yaml({"k": " lead\nx"}) == 'k: " lead\\nx"\n'
    assert rules.to_yaml({"k": "trail \nx"}) == 'k: "trail \\nx"\n'
    assert rules.to_yaml({"k": "end\n"}) == 'k: "end\\n"\n'


@given(st.text())
def test_yaml_scalar_is_plain_or_a_json_string(value: str) -> None:
    text = rules._scalar(value)
    if text.startswith('"'):
        assert json.loads(text) == value
    else:
        assert text == value and re.fullmatch(r"[A-Za-z][A-Za-z0-9_./:-]*", text)
        assert value.lower() not in {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_yaml_block_is_only_used_when_exact(value: str) -> None:
    out = rules._item("k:", value, 0)
    if out.startswith("k: |-\n"):
        lines = out[len("k: |-\n") :].rstrip("\n").split("\n")
        assert "\n".join(line[2:] for line in lines) == value
        assert all(line.startswith("  ") or line == "" for line in lines)


# --- the committed test fixtures and routing agree with the rules -------------------


def test_promtool_fixtures_use_exported_names_and_known_alerts() -> None:
    alerts = {r["alert"] for r in _alerts()}
    records = {r["record"] for r in _rules() if "record" in r}
    files = sorted((ROOT / "tests" / "promtool").glob("*.yml"))
    assert len(files) >= 3
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert "rule_files:\n  - callpulse.rules.yml\n" in text, f.name
        for used in NAME.findall(text):
            assert used in EXPORTED, (f.name, used)
        for used in re.findall(r"alertname: (\w+)", text):
            assert used in alerts, (f.name, used)
        for used in re.findall(r"job_queue\w*:[\w:]+", text):
            assert used in records, (f.name, used)


def test_alertmanager_inhibitors_exist() -> None:
    text = (ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
    (inhibitors,) = re.findall(r"alertname=~\"([\w|]+)\"", text)
    assert set(inhibitors.split("|")) == {rules.EXPORTER_DOWN, rules.NO_EVENTS}
    for name in (rules.EXPORTER_DOWN, rules.NO_EVENTS):
        (rule,) = _alerts(name=name)
        # Sources carry job (the inhibition's `equal`) and no queue label.
        assert rule["labels"]["component"] == "pipeline"
        assert "by (job)" in rule["expr"] or "absent(" in rule["expr"]
