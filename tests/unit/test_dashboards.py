"""Grafana boards as code: deterministic, committed, schema-valid, laid out without
overlap, and every query names only metrics the exporter has (metrics.export.names; the
per-agent ones, exported with [exporter] per_agent only, on the agent board only)."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from dashboards import build as boards
from dashboards import publish
from dashboards.panels import DATASOURCE_UID, FOLDER_UID
from metrics.export import names
from pipeline.core.config import Config, QueueSettings, Targets
from tests.support.shared import need, shared_file

SCHEMA = shared_file("grafana-schema", "dashboard.jsonschema.json")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "provisioning"
BUILT = boards.build_all()

KNOWN: dict[str, names.MetricName] = {}
for metric in (*names.ALL, *names.PER_AGENT):
    KNOWN[metric.name] = metric
    if metric.kind == "histogram":
        for suffix in ("_bucket", "_count", "_sum"):
            KNOWN[metric.name + suffix] = metric

_PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """Metric names used by a PromQL expression (recording rules, with ':', left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)\s*(\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_WORDS or ":" in word:
            continue
        found.add(word)
    return found


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return list(board["panels"])


def queries(board: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(board) for t in p.get("targets", [])]
    exprs += [a["expr"] for a in board.get("annotations", {}).get("list", []) if "expr" in a]
    return exprs


def test_metric_name_parser() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le) "
        "(rate(callpulse_batch_duration_seconds_bucket[$__rate_interval])))"
        ' / on (queue) group_left () job:callpulse_x:ratio5m{queue=~"a|b"} and up == bool 1'
    )
    assert metric_names(expr) == {"callpulse_batch_duration_seconds_bucket", "up"}


def test_builders_are_deterministic_and_the_committed_json_is_current() -> None:
    assert boards.build_all() == BUILT
    for stem, board in BUILT.items():
        path = boards.GENERATED_DIR / f"{stem}.json"
        assert path.is_file(), f"{path} missing: run `callpulse dashboards build`"
        assert path.read_text(encoding="utf-8") == boards.render(board), (
            f"{path} is stale: run `callpulse dashboards build` and commit the result"
        )
    assert sorted(p.stem for p in boards.GENERATED_DIR.glob("*.json")) == sorted(BUILT)


@pytest.mark.parametrize("stem", sorted(BUILT))
def test_board_is_valid_against_the_grafana_schema(stem: str) -> None:
    schema = json.loads(need(SCHEMA).read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(BUILT[stem]), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message[:300]}" for e in errors[:10])
    assert BUILT[stem]["schemaVersion"] >= 41


@pytest.mark.parametrize("stem", sorted(BUILT))
def test_ids_are_unique_and_panels_do_not_overlap(stem: str) -> None:
    ps = panels(BUILT[stem])
    ids = [p["id"] for p in ps]
    assert len(ids) == len(set(ids)) and all(i > 0 for i in ids)
    for p in ps:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0 and g["w"] > 0, p["title"]
    for a, b in itertools.combinations(ps, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        overlap = (
            ga["x"] < gb["x"] + gb["w"]
            and gb["x"] < ga["x"] + ga["w"]
            and ga["y"] < gb["y"] + gb["h"]
            and gb["y"] < ga["y"] + ga["h"]
        )
        assert not overlap, f"{a['title']!r} overlaps {b['title']!r}"
    for p in ps:
        ref_ids = [t["refId"] for t in p.get("targets", [])]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]


@pytest.mark.parametrize("stem", sorted(BUILT))
def test_every_query_names_only_exported_metrics(stem: str) -> None:
    board = BUILT[stem]
    exprs = queries(board)
    assert exprs
    for expr in exprs:
        used = metric_names(expr)
        assert used, f"no metric in {expr!r}"
        unknown = used - set(KNOWN)
        assert not unknown, f"{expr!r} uses metrics not in metrics/export/names.py: {unknown}"
    for var in board.get("templating", {}).get("list", []):
        if var["type"] == "query":
            metric = re.fullmatch(r"label_values\((\w+), *(\w+)\)", var["query"])
            assert metric and metric.group(1) in KNOWN
            assert metric.group(2) in KNOWN[metric.group(1)].labels


def test_only_the_agent_board_needs_per_agent_series() -> None:
    per_agent = {m.name for m in names.PER_AGENT}
    for stem, board in BUILT.items():
        used = set().union(*(metric_names(e) for e in queries(board)))
        variables = " ".join(v.get("query", "") for v in board["templating"].get("list", []) if v["type"] == "query")
        if stem != "agents":
            assert not used & per_agent, stem
            assert not any(name in variables for name in per_agent), stem


def test_agent_board_shows_every_per_agent_kpi() -> None:
    board = BUILT["agents"]
    used = set().union(*(metric_names(e) for e in queries(board)))
    for metric in (
        names.AGENT_HANDLED,
        names.AGENT_AHT,
        names.AGENT_OCCUPANCY,
        names.AGENT_NOT_READY_SECONDS,
        names.AGENT_QA_SCORE,
    ):
        assert metric.name in used
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["agent"]["query"] == f"label_values({names.AGENT_HANDLED.name}, agent)"
    assert variables["window"]["query"] == ",".join(names.WINDOWS)
    for p in panels(board):
        for t in p.get("targets", []):
            if set(metric_names(t["expr"])) & {m.name for m in names.PER_AGENT}:
                assert '$agent"' in t["expr"], (p["title"], t["expr"])
    units = {p["title"].split(" (")[0]: p.get("fieldConfig", {}).get("defaults", {}).get("unit") for p in panels(board)}
    assert units["Handled calls"] == "short" and units["AHT"] == "s" and units["Occupancy"] == "percentunit"
    assert units["Not-ready time by agent and reason"] == "s"


@pytest.mark.parametrize("stem", sorted(BUILT))
def test_datasources_are_the_provisioned_uid(stem: str) -> None:
    board = BUILT[stem]
    refs = [p["datasource"] for p in panels(board) if "datasource" in p]
    refs += [t["datasource"] for p in panels(board) for t in p.get("targets", [])]
    refs += [v["datasource"] for v in board["templating"].get("list", []) if "datasource" in v]
    refs += [a["datasource"] for a in board.get("annotations", {}).get("list", [])]
    assert refs and all(r == {"type": "prometheus", "uid": DATASOURCE_UID} for r in refs)
    provisioned = (DEPLOY / "datasources" / "callpulse.yml").read_text()
    assert re.findall(r"^\s+uid: (\S+)$", provisioned, re.M) == [DATASOURCE_UID]


def test_uids_are_fixed_and_distinct() -> None:
    uids = [b["uid"] for b in BUILT.values()]
    assert len(set(uids)) == len(uids) and all(u.startswith("callpulse-") for u in uids)
    provider = (DEPLOY / "dashboards" / "callpulse.yml").read_text()
    assert re.findall(r"^\s+folderUid: (\S+)$", provider, re.M) == [FOLDER_UID]
    assert "path: /var/lib/grafana/dashboards/callpulse" in provider


def test_supervisor_wallboard_is_kiosk_ready() -> None:
    board = BUILT["supervisor-wallboard"]
    assert board["refresh"] == "5s"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["queue"]["query"] == f"label_values({names.CALLS_WAITING.name}, queue)"
    rows = [p for p in panels(board) if p["type"] == "row"]
    assert [r.get("repeat") for r in rows] == ["queue"]
    stats = [p for p in panels(board) if p["type"] == "stat"]
    titles = " | ".join(p["title"] for p in stats)
    for word in (
        "Calls waiting",
        "Oldest wait",
        "Service level",
        "ASA",
        "Abandon rate",
        "Agents ready",
        "Agents busy",
        "wrap",
        "Agents not ready",
        "reason",
        "Time not ready by reason",
    ):
        assert word in titles
    time_tile = next(p for p in stats if p["title"] == "Time not ready by reason")
    assert names.AGENTS_NOT_READY_SECONDS.name in time_tile["targets"][0]["expr"]
    assert time_tile["fieldConfig"]["defaults"]["unit"] == "s"
    for p in stats:
        assert p["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
        assert all(t["instant"] for t in p["targets"])
        assert p["options"]["textMode"] in ("value", "value_and_name")
    units = {p["title"].split(" (")[0]: p["fieldConfig"]["defaults"]["unit"] for p in stats}
    assert units["Service level"] == units["Abandon rate"] == "percentunit"
    assert units["ASA"] == units["Oldest wait"] == "s"


def test_kpi_tiles_take_their_threshold_from_the_target_metric() -> None:
    board = BUILT["supervisor-wallboard"]
    tiles = {p["title"].split(" (")[0]: p for p in panels(board) if p["type"] == "stat"}
    for title, target, higher_better in (
        ("Service level", names.TARGET_SERVICE_LEVEL, True),
        ("ASA", names.TARGET_ASA, False),
        ("Abandon rate", names.TARGET_ABANDON_RATE, False),
        ("Oldest wait", names.TARGET_OLDEST_WAIT, False),
    ):
        tile = tiles[title]
        background = tile["options"]["colorMode"]
        assert background == "background"
        by_ref = {t["refId"]: t for t in tile["targets"]}
        assert target.name in by_ref["T"]["expr"] and by_ref["T"]["legendFormat"] == "threshold1"
        [transform] = tile["transformations"]
        assert transform["id"] == "configFromData" and transform["options"]["configRefId"] == "T"
        steps = tile["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [s["color"] for s in steps] == (["red", "green"] if higher_better else ["green", "red"])
        if title != "Oldest wait":  # KPIs on too few calls never breach: min_calls gates the target
            assert names.MIN_CALLS.name in by_ref["T"]["expr"]


def test_static_thresholds_follow_the_configured_default_targets() -> None:
    config = Config(defaults=QueueSettings(targets=Targets(service_level=0.9, asa_s=20)))
    board = boards.build_all(config)["supervisor-wallboard"]
    steps = {
        p["title"].split(" (")[0]: p["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"]
        for p in board["panels"]
        if len(p.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])) == 2
    }
    assert steps["Service level"] == 0.9 and steps["ASA"] == 20


def test_operations_board_draws_targets_and_breaches() -> None:
    board = BUILT["operations"]
    exprs = queries(board)
    for target in (names.TARGET_SERVICE_LEVEL, names.TARGET_ASA, names.TARGET_ABANDON_RATE):
        assert any(target.name in e for e in exprs)
    [annotation] = board["annotations"]["list"]
    assert names.BREACH.name in annotation["expr"]
    assert board["time"]["from"] == "now/d"


class FakeGrafana:
    """Records what publish() sends, answering like Grafana's folder/dashboard APIs."""

    def __init__(self) -> None:
        self.folders: dict[str, str] = {}
        self.saved: list[dict[str, Any]] = []
        self.folder, self.dashboard = self, self

    def get_folder(self, uid: str) -> dict[str, Any]:
        from grafana_client.client import GrafanaClientError

        if uid not in self.folders:
            raise GrafanaClientError(404, None, "Client Error 404: Folder not found")
        return {"uid": uid, "title": self.folders[uid]}

    def create_folder(self, title: str, uid: str | None = None) -> dict[str, Any]:
        assert uid is not None and uid not in self.folders
        self.folders[uid] = title
        return {"uid": uid}

    def update_dashboard(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.saved.append(payload)
        return {"uid": payload["dashboard"]["uid"], "version": len(self.saved), "url": "/d/x"}


def test_publish_is_idempotent_by_uid() -> None:
    api = FakeGrafana()
    publish.publish(api, BUILT)
    publish.publish(api, BUILT)
    assert api.folders == {FOLDER_UID: "callpulse"}
    assert len(api.saved) == 2 * len(BUILT)
    for payload in api.saved:
        assert payload["overwrite"] is True and payload["folderUid"] == FOLDER_UID
        assert payload["dashboard"]["id"] is None
    first, second = api.saved[: len(BUILT)], api.saved[len(BUILT) :]
    assert [p["dashboard"]["uid"] for p in first] == [p["dashboard"]["uid"] for p in second]


# --------------------------------------------------------------------------- wallboard page


def _snapshot() -> Any:
    from datetime import UTC, datetime

    from metrics.kpi.snapshot import KpiSnapshot, QueueKpis, QueueSnapshot, QueueTargets

    targets = QueueTargets(0.8, 0.05, 30.0, 120.0, 10, 15.0, "negative")
    few = QueueKpis(offered=9, answered=5, service_level=0.1, asa_s=90.0, abandon_rate=0.4)
    many = QueueKpis(offered=40, answered=30, service_level=0.8, asa_s=31.0, abandon_rate=None)
    return KpiSnapshot(
        watermark=datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
        interval_s=900,
        queues={
            "few": QueueSnapshot(
                "few",
                targets,
                {"15m": few},
                QueueKpis(),
                None,
                2,
                121.0,
                {("ready", ""): 1, ("not_ready", "break"): 2, ("not_ready", "lunch"): 1, ("not_ready", ""): 1},
                {
                    ("ready", ""): 30.0,
                    ("not_ready", "break"): 400.0,
                    ("not_ready", "lunch"): 720.5,
                    ("not_ready", ""): 5.0,
                },
            ),
            "many": QueueSnapshot("many", targets, {"15m": many}, QueueKpis(), None, 0, None),
        },
    )


def test_wallboard_tiles_follow_the_terminal_board_rule() -> None:
    from dashboards import wallboard

    doc = wallboard.wallboard_json(_snapshot(), [], [], [], "Asia/Shanghai", "15m")
    tiles = {q["queue"]: {k: t["status"] for k, t in q["tiles"].items()} for q in doc["queues"]}
    # Too few calls: no KPI breach however bad; oldest wait breaches on its own.
    assert tiles["few"]["service_level"] == tiles["few"]["asa_s"] == "none"
    assert tiles["few"]["oldest_wait_s"] == "breach"
    # Enough calls: SL at its target is ok, ASA past it breaches, undefined is none.
    assert tiles["many"]["service_level"] == "ok" and tiles["many"]["asa_s"] == "breach"
    assert tiles["many"]["abandon_rate"] == "none" and tiles["many"]["oldest_wait_s"] == "none"
    few = next(q for q in doc["queues"] if q["queue"] == "few")["tiles"]
    assert few["agents_not_ready"]["value"] == 4 and few["agents_ready"]["value"] == 1
    assert {(b["queue"], b["kpi"]) for b in doc["breaches"]} == {
        ("few", "oldest_wait_s"),
        ("many", "asa_s"),
    }
    assert doc["watermark_local"] == "2026-03-02 10:00:00"
    assert doc["data_age_s"] is None  # no wall clock given


def test_wallboard_data_age_is_wall_clock_minus_watermark() -> None:
    from datetime import UTC, datetime

    from dashboards import wallboard

    now = datetime(2026, 3, 2, 2, 1, 30, tzinfo=UTC)  # the snapshot's watermark is 02:00:00 UTC
    doc = wallboard.wallboard_json(_snapshot(), [], [], [], "Asia/Shanghai", "15m", now)
    assert doc["data_age_s"] == 90.0
    assert doc["stale_after_s"] == 120.0  # [wallboard] stale_after's default
    # The feed answers with the age as of the request: a quiet pipeline publishes nothing
    # new, and its data still gets older.
    later = wallboard.with_age(doc, datetime(2026, 3, 2, 2, 10, 0, tzinfo=UTC))
    assert later["data_age_s"] == 600.0 and later["watermark"] == doc["watermark"]
    assert wallboard.with_age({**doc, "watermark": None}, now)["data_age_s"] is None


def test_feed_body_is_the_document_with_its_age_as_of_each_request() -> None:
    """The feed encodes a document once and adds the age per request: what it serves must be
    the document with_age gives, for each request's time, and a new document's own."""
    import json
    from datetime import UTC, datetime

    from dashboards import wallboard

    now = datetime(2026, 3, 2, 2, 1, 30, tzinfo=UTC)
    doc = wallboard.wallboard_json(_snapshot(), [], [], [], "Asia/Shanghai", "15m", now)
    body = wallboard.FeedBody()
    for at in (now, datetime(2026, 3, 2, 2, 10, 0, tzinfo=UTC), datetime(2026, 3, 2, 2, 10, 0, 250000, tzinfo=UTC)):
        assert json.loads(body(doc, at)) == wallboard.with_age(doc, at)
    quiet = {**doc, "watermark": None, "timezone": "UTC"}  # the next publication
    assert json.loads(body(quiet, now)) == wallboard.with_age(quiet, now)
    assert json.loads(body({}, now)) == {"data_age_s": None}


def test_wallboard_time_not_ready_by_reason() -> None:
    from dashboards import wallboard

    doc = wallboard.wallboard_json(_snapshot(), [], [], [], "Asia/Shanghai", "15m")
    tiles = {q["queue"]: q["tiles"]["not_ready_time"] for q in doc["queues"]}
    # Only not-ready time, per reason, longest first; no reason is None; never a breach.
    assert tiles["few"]["reasons"] == [
        {"reason": "lunch", "seconds": 720.5},
        {"reason": "break", "seconds": 400.0},
        {"reason": None, "seconds": 5.0},
    ]
    assert tiles["few"]["value"] == 1125.5 and tiles["few"]["status"] == "none"
    # A queue with nobody not ready: no reasons, zero time.
    assert tiles["many"]["reasons"] == [] and tiles["many"]["value"] == 0
    assert not any(b["kpi"] == "not_ready_time" for b in doc["breaches"])
    json.dumps(doc)  # serializable as published


def test_wallboard_lists_carry_only_masked_callers() -> None:
    from datetime import UTC, datetime

    from dashboards import wallboard

    at = datetime(2026, 3, 2, 1, 59, 30, tzinfo=UTC)
    waiting = [
        {
            "queue": "few",
            "caller_masked": "+86*****01",
            "offered_at": at,
            "wait_s": 30.0,
            "caller_key": "secret-hash",
        }
    ]
    abandoned = [{"queue": "few", "caller_masked": "+86*****02", "abandoned_at": at, "wait_s": 12.0}]
    doc = wallboard.wallboard_json(_snapshot(), waiting, abandoned, [], "Asia/Shanghai", "15m")
    assert doc["waiting"] == [{"queue": "few", "caller": "+86*****01", "wait_s": 30.0, "since": "09:59:30"}]
    assert doc["abandoned"][0] == {
        "time": "09:59:30",
        "queue": "few",
        "wait_s": 12.0,
        "caller": "+86*****02",
    }
    assert "secret-hash" not in json.dumps(doc)


def test_wallboard_names_every_breaching_window_explains_grey_and_cues_risks() -> None:
    from datetime import UTC, datetime

    from dashboards import wallboard
    from metrics.kpi.snapshot import KpiSnapshot, QueueKpis, QueueSnapshot, QueueTargets

    targets = QueueTargets(0.8, 0.05, 30.0, 120.0, 10, 15.0, "negative")
    # 5m: SL 0.5 on 12 calls (a breach); 15m: SL 0.85 on 40 (fine); 1h: 6 calls (too few).
    windows = {
        "5m": QueueKpis(offered=12, answered=10, service_level=0.5, asa_s=20.0, abandon_rate=0.0),
        "15m": QueueKpis(offered=40, answered=38, service_level=0.85, asa_s=20.0, abandon_rate=0.0),
        "1h": QueueKpis(offered=6, answered=6, service_level=0.2, asa_s=20.0, abandon_rate=0.0),
    }
    # 3 waiting, nobody ready, the oldest for 100 s of a 120 s target (83 %: near it).
    q = QueueSnapshot("billing", targets, windows, QueueKpis(), None, 3, 100.0, {("busy", ""): 4})
    calm = QueueSnapshot("sales", targets, windows, QueueKpis(), None, 0, 95.0, {("ready", ""): 2})
    snap = KpiSnapshot(datetime(2026, 3, 2, 2, 0, tzinfo=UTC), 900, {"billing": q, "sales": calm})
    doc = wallboard.wallboard_json(snap, [], [], [], "UTC", "15m")

    assert [(b["queue"], b["kpi"], b["window"], b["label"]) for b in doc["breaches"]] == [
        ("billing", "service_level", "5m", "Service level 5m"),
        ("sales", "service_level", "5m", "Service level 5m"),
    ]
    billing, sales = doc["queues"]
    assert billing["tiles"]["service_level"]["status"] == "ok"  # the board's own window (15m)
    assert billing["risks"] == [
        {"kind": "no_ready", "waiting": 3},
        {"kind": "wait_near_target", "value": 100.0, "target": 120.0},
    ]
    assert sales["risks"] == []  # nobody waiting; 95 s is under 80 % of 120 s (96 s)
    grey = wallboard.wallboard_json(snap, [], [], [], "UTC", "1h")["queues"][0]["tiles"]["service_level"]
    assert grey["status"] == "none" and grey["why"] == "fewer than 10 calls"
    assert "why" not in billing["tiles"]["service_level"]


def test_wallboard_agents_needed_beside_staffed_and_the_understaffed_cue() -> None:
    from datetime import UTC, datetime

    from dashboards import wallboard
    from metrics.kpi.snapshot import KpiSnapshot, QueueKpis, QueueSnapshot, QueueTargets
    from metrics.kpi.staffing import StaffingNeed

    targets = QueueTargets(0.8, 0.05, 30.0, 120.0, 10, 15.0, "negative")
    k = {"15m": QueueKpis(offered=100, answered=90, service_level=0.7)}
    need14 = StaffingNeed(14, None, "erlang_c", 100, 900, 180.0, None, 0.81)
    # billing: needs 14, 3 ready + 6 busy logged in = 9 staffed: short by 5.
    short = QueueSnapshot("billing", targets, k, QueueKpis(), None, 0, None, {("ready", ""): 3, ("busy", ""): 6})
    short = replace(short, staffing=need14)
    # sales: needs 14, 14 logged in (2 of them on a break): enough, no cue.
    enough = QueueSnapshot(
        "sales", targets, k, QueueKpis(), None, 0, None, {("ready", ""): 12, ("not_ready", "break"): 2}, staffing=need14
    )
    unknown = StaffingNeed(None, "fewer than 10 calls", None, 4, 900, None, None, None)
    quiet = QueueSnapshot("quiet", targets, k, QueueKpis(), None, 0, None, {("ready", ""): 1}, staffing=unknown)
    snap = KpiSnapshot(datetime(2026, 3, 2, 2, 0, tzinfo=UTC), 900, {"billing": short, "sales": enough, "quiet": quiet})
    snap = replace(snap, staffing_window="15m")
    doc = wallboard.wallboard_json(snap, [], [], [], "UTC", "15m")
    by_queue = {q["queue"]: q for q in doc["queues"]}
    assert doc["staffing_window"] == "15m"

    tile = by_queue["billing"]["tiles"]["agents_needed"]
    assert (tile["value"], tile["staffed"], tile["ready"], tile["short_by"]) == (14, 9, 3, 5)
    assert by_queue["billing"]["risks"] == [{"kind": "understaffed", "needed": 14, "staffed": 9, "short_by": 5}]
    tile = by_queue["sales"]["tiles"]["agents_needed"]
    assert (tile["value"], tile["staffed"], tile["ready"], tile["short_by"]) == (14, 14, 12, 0)
    assert by_queue["sales"]["risks"] == []
    tile = by_queue["quiet"]["tiles"]["agents_needed"]
    assert (tile["value"], tile["why"], tile["status"]) == (None, "fewer than 10 calls", "none")
    assert by_queue["quiet"]["risks"] == []
    assert not any(b["kpi"] == "agents_needed" for b in doc["breaches"])  # a cue, not a KPI breach
