"""callpulse.toml: read once, validated, turned into frozen settings.

This is the only module that reads configuration files or the environment for
the pipeline. A bad file raises ``ConfigError`` whose message names the key and
the problem; the CLI prints it without a traceback.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SL_FORMULAS: tuple[str, ...] = ("negative", "without_abandons", "positive", "answered_only")
PII_KEY_ENV = "CALLPULSE_PII_KEY"
RUNBOOK_URL = "docs/runbooks"
"""Default runbook base: the repository's own pages, ``docs/runbooks/<AlertName>.md``."""
log = logging.getLogger("callpulse.config")
# A shorter HMAC key could be guessed, and with it every caller number from its hash.
MIN_PII_KEY_BYTES = 16


class ConfigError(ValueError):
    """A configuration problem, with the offending key in the message."""


@dataclass(frozen=True, slots=True)
class Targets:
    service_level: float = 0.80
    abandon_rate: float = 0.05
    asa_s: float = 30.0
    oldest_wait_s: float = 120.0
    # Share of quality reports (a leg and direction of a call) that are poor (MOS, loss or
    # jitter past the queue's quality thresholds): at most.
    poor_quality_ratio: float = 0.10


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """When a call sounded poor (DESIGN.md, Additions): MOS below ``poor_mos`` (ITU-T G.107
    puts 3.6 at the "some users dissatisfied" edge; 3.5 is the common alarm), or loss above
    ``poor_loss_pct`` percent, or jitter above ``poor_jitter_ms`` (common practice for voice)."""

    poor_mos: float = 3.5
    poor_loss_pct: float = 1.0
    poor_jitter_ms: float = 30.0


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """KPI settings of one queue (global defaults with its overrides applied)."""

    sl_threshold_s: float = 15.0
    sl_formula: str = "negative"
    short_abandon_s: float = 5.0
    repeat_window_s: float = 24 * 3600.0
    min_calls: int = 10
    orphan_after_s: float = 4 * 3600.0
    targets: Targets = field(default_factory=Targets)
    quality: QualityThresholds = field(default_factory=QualityThresholds)


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str = "127.0.0.1:9092"
    group: str = "callpulse"
    topic_prefix: str = "callpulse."
    # Under a backlog (or while the store is busy) a micro-batch grows up to batch_size:
    # KPI maintenance costs about the same per batch whatever its size, so large batches
    # catch up fastest. At low rates at most one batch per batch_within is taken, counted
    # from the last take (see MicroBatcher): a shorter bound means fresher KPIs for more
    # batches, so more of that fixed cost.
    batch_size: int = 50_000
    batch_within_s: float = 0.3
    # How long the broker may hold a fetch until FETCH_MIN_BYTES have arrived. Without it
    # (0) every fetch returns as soon as one record is there, and a steady stream of small
    # fetches keeps the consumer's thread busy: at 1,000 events/s a third of a core, taken
    # from the thread that stores the batches (docs/benchmarks.md). Bounded by batch_within
    # in effect: a batch waits that long anyway.
    fetch_wait_s: float = 0.1
    # DuckDB's threads while the worker runs (0: DuckDB's default, one per core). A steady
    # stream's statements read a few thousand rows, where parallel operators cost more in
    # scheduling than they save; and with one thread each query runs on the thread that
    # asked for it, so the board refresher's lower priority covers its queries too. The
    # price is a somewhat slower catch-up after a backlog, when batches are large.
    duckdb_threads: int = 1
    # How long `worker` and `produce` keep trying to reach the broker at start (back-off
    # 1, 2, 4 ... 30 s between attempts) before giving up; 0: one attempt.
    start_timeout_s: float = 120.0
    # Several workers in one group, each owning the queues of its calls partitions: agent
    # events are forwarded to the owners of the agent's queues (docs/kafka.md).
    route_by_queue: bool = False
    # This worker's name ("": the host's), in worker_partitions and for {worker} in the db path.
    worker_id: str = ""


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    host: str = "127.0.0.1"
    port: int = 9464
    per_agent: bool = False
    breach_hold_s: float = 300.0


@dataclass(frozen=True, slots=True)
class WallboardSettings:
    """The built-in wallboard (dashboards/wallboard.py)."""

    # Past this age (wall clock minus the newest event, or since the page last got the
    # feed) the page says STALE instead of live: supervisors must not act on old numbers.
    stale_after_s: float = 120.0


@dataclass(frozen=True, slots=True)
class AnalystSettings:
    """The analysts' side (pipeline/ops/analyst_copy.py): their copy's freshness and path, retention."""

    freshness_s: float = 60.0
    copy: Path | None = None  # None: beside the database, <stem>.analyst.duckdb
    retention_days: int | None = None  # None: keep raw events for ever
    parquet: Path | None = None  # the shared Parquet store workers append to (pipeline/ops/parquet_store.py)
    parquet_worker: str = ""  # this worker's partition name there ("": made up once, kept in its database)
    parquet_every_s: float = 60.0  # at most one export per this many seconds (and one at the end)


@dataclass(frozen=True, slots=True)
class AlertsSettings:
    """Settings of the generated Prometheus alert rules."""

    # Each alert's runbook_url annotation is <runbook_url>/<AlertName>.md; point it at
    # where people on call can read the repository's docs/runbooks folder.
    runbook_url: str = RUNBOOK_URL


@dataclass(frozen=True, slots=True)
class Config:
    db: Path = Path("data/callpulse.duckdb")
    timezone: str = "UTC"
    interval_s: int = 900
    windows: tuple[tuple[str, int], ...] = (("5m", 300), ("15m", 900), ("1h", 3600))
    # Records per replay batch: larger batches spread the fixed per-batch KPI refresh over
    # more records, at the price of memory (each batch is held whole while it is stored).
    batch_size: int = 200_000
    max_future_s: float = 300.0
    defaults: QueueSettings = field(default_factory=QueueSettings)
    queues: dict[str, QueueSettings] = field(default_factory=dict)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    exporter: ExporterSettings = field(default_factory=ExporterSettings)
    wallboard: WallboardSettings = field(default_factory=WallboardSettings)
    analyst: AnalystSettings = field(default_factory=AnalystSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)

    def for_queue(self, queue: str) -> QueueSettings:
        return self.queues.get(queue, self.defaults)

    def with_db(self, db: Path | str | None) -> Config:
        return self if db is None else replace(self, db=Path(db))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, key: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"4h"``, ``"1d"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration such as 15m or 900, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ConfigError(f"{key}: expected a duration such as 15m or 900, got {value!r}")
    if seconds < 0:
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    return seconds


def _number(value: Any, key: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ConfigError(f"{key}: must be {bounds}, got {value!r}")
    return float(value)


def _integer(value: Any, key: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if value < lo:
        raise ConfigError(f"{key}: must be at least {lo}, got {value!r}")
    return value


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _table(value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table, got {value!r}")
    for name in value:
        if name not in allowed:
            where = f"{key}.{name}" if key else name
            raise ConfigError(f"{where}: unknown key (allowed: {', '.join(sorted(allowed))})")
    return value


def _targets(raw: Any, key: str, base: Targets) -> Targets:
    t = _table(raw, key, {"service_level", "abandon_rate", "asa_s", "oldest_wait_s", "poor_quality_ratio"})
    return Targets(
        service_level=_number(t.get("service_level", base.service_level), f"{key}.service_level", 0, 1),
        abandon_rate=_number(t.get("abandon_rate", base.abandon_rate), f"{key}.abandon_rate", 0, 1),
        asa_s=_number(t.get("asa_s", base.asa_s), f"{key}.asa_s", 0),
        oldest_wait_s=_number(t.get("oldest_wait_s", base.oldest_wait_s), f"{key}.oldest_wait_s", 0),
        poor_quality_ratio=_number(
            t.get("poor_quality_ratio", base.poor_quality_ratio), f"{key}.poor_quality_ratio", 0, 1
        ),
    )


_QUEUE_KEYS = {
    "sl_threshold_s",
    "sl_formula",
    "short_abandon_s",
    "repeat_window",
    "min_calls",
    "orphan_after",
    "targets",
    "quality",
}


def _quality(raw: Any, key: str, base: QualityThresholds) -> QualityThresholds:
    q = _table(raw, key, {"poor_mos", "poor_loss_pct", "poor_jitter_ms"})
    return QualityThresholds(
        poor_mos=_number(q.get("poor_mos", base.poor_mos), f"{key}.poor_mos", 1, 5),
        poor_loss_pct=_number(q.get("poor_loss_pct", base.poor_loss_pct), f"{key}.poor_loss_pct", 0, 100),
        poor_jitter_ms=_number(q.get("poor_jitter_ms", base.poor_jitter_ms), f"{key}.poor_jitter_ms", 0),
    )


def _queue_settings(raw: Any, key: str, base: QueueSettings) -> QueueSettings:
    q = _table(raw, key, _QUEUE_KEYS)
    formula = q.get("sl_formula", base.sl_formula)
    if formula not in SL_FORMULAS:
        raise ConfigError(f"{key}.sl_formula: must be one of {', '.join(SL_FORMULAS)}, got {formula!r}")
    return QueueSettings(
        sl_threshold_s=_number(q.get("sl_threshold_s", base.sl_threshold_s), f"{key}.sl_threshold_s", 0),
        sl_formula=formula,
        short_abandon_s=_number(q.get("short_abandon_s", base.short_abandon_s), f"{key}.short_abandon_s", 0),
        repeat_window_s=parse_duration(q.get("repeat_window", base.repeat_window_s), f"{key}.repeat_window"),
        min_calls=_integer(q.get("min_calls", base.min_calls), f"{key}.min_calls"),
        orphan_after_s=parse_duration(q.get("orphan_after", base.orphan_after_s), f"{key}.orphan_after"),
        targets=_targets(q.get("targets", {}), f"{key}.targets", base.targets),
        quality=_quality(q.get("quality", {}), f"{key}.quality", base.quality),
    )


def _kafka(raw: Any) -> KafkaSettings:
    k = _table(
        raw,
        "kafka",
        {
            "bootstrap",
            "group",
            "topic_prefix",
            "batch_size",
            "batch_within",
            "fetch_wait",
            "duckdb_threads",
            "start_timeout",
            "route_by_queue",
            "worker_id",
        },
    )
    d = KafkaSettings()
    route_by_queue = k.get("route_by_queue", d.route_by_queue)
    if not isinstance(route_by_queue, bool):
        raise ConfigError(f"kafka.route_by_queue: expected true or false, got {route_by_queue!r}")
    worker_id = k.get("worker_id", d.worker_id)
    if worker_id != "":
        worker_id = check_worker_id(_string(worker_id, "kafka.worker_id"), "kafka.worker_id")
    return KafkaSettings(
        bootstrap=_string(k.get("bootstrap", d.bootstrap), "kafka.bootstrap"),
        group=_string(k.get("group", d.group), "kafka.group"),
        topic_prefix=str(k.get("topic_prefix", d.topic_prefix)),
        batch_size=_integer(k.get("batch_size", d.batch_size), "kafka.batch_size", 1),
        batch_within_s=parse_duration(k.get("batch_within", d.batch_within_s), "kafka.batch_within"),
        fetch_wait_s=parse_duration(k.get("fetch_wait", d.fetch_wait_s), "kafka.fetch_wait"),
        duckdb_threads=_integer(k.get("duckdb_threads", d.duckdb_threads), "kafka.duckdb_threads", 0),
        start_timeout_s=parse_duration(k.get("start_timeout", d.start_timeout_s), "kafka.start_timeout"),
        route_by_queue=route_by_queue,
        worker_id=worker_id,
    )


def for_worker(config: Config, worker_id: str | None = None) -> Config:
    """The config of one worker: its id (``worker_id``, else ``[kafka] worker_id``, else the
    host's name) in ``kafka.worker_id`` and in place of ``{worker}`` in the database path."""
    import socket

    if worker_id is not None:
        chosen = check_worker_id(worker_id, "--worker-id")
    elif config.kafka.worker_id:
        chosen = config.kafka.worker_id
    else:
        chosen = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-.")[:64] or "worker"
    db = Path(str(config.db).replace("{worker}", chosen))
    return replace(config, db=db, kafka=replace(config.kafka, worker_id=chosen))


def check_worker_id(worker_id: str, key: str) -> str:
    """A worker id is part of a file name ({worker} in the db path): letters, digits, ``._-``."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", worker_id):
        raise ConfigError(
            f"{key}: {worker_id!r} is not a usable worker id; use up to 64 letters, digits, '.', '_' or '-'"
        )
    return worker_id


def _exporter(raw: Any) -> ExporterSettings:
    e = _table(raw, "exporter", {"host", "port", "per_agent", "breach_hold"})
    d = ExporterSettings()
    per_agent = e.get("per_agent", d.per_agent)
    if not isinstance(per_agent, bool):
        raise ConfigError(f"exporter.per_agent: expected true or false, got {per_agent!r}")
    return ExporterSettings(
        host=_string(e.get("host", d.host), "exporter.host"),
        port=_integer(e.get("port", d.port), "exporter.port", 0),
        per_agent=per_agent,
        breach_hold_s=parse_duration(e.get("breach_hold", d.breach_hold_s), "exporter.breach_hold"),
    )


def _wallboard(raw: Any) -> WallboardSettings:
    w = _table(raw, "wallboard", {"stale_after"})
    stale_after = parse_duration(w.get("stale_after", WallboardSettings().stale_after_s), "wallboard.stale_after")
    if stale_after <= 0:
        raise ConfigError(f"wallboard.stale_after: must be more than 0, got {w.get('stale_after')!r}")
    return WallboardSettings(stale_after_s=stale_after)


def _analyst(raw: Any) -> AnalystSettings:
    keys = {"freshness", "copy", "snapshot", "retention_days", "parquet", "parquet_worker", "parquet_every"}
    a = _table(raw, "analyst", keys)
    d = AnalystSettings()
    freshness = parse_duration(a.get("freshness", d.freshness_s), "analyst.freshness")
    if freshness < 1:
        raise ConfigError(f"analyst.freshness: must be at least 1s, got {a.get('freshness')!r}")
    copy, key = a.get("copy"), "analyst.copy"
    if "snapshot" in a:
        # The old name of the key: "snapshot" now means only the KPI snapshot.
        if copy is not None:
            raise ConfigError("analyst.snapshot and analyst.copy are the same setting; keep analyst.copy only")
        copy, key = a["snapshot"], "analyst.snapshot"
        log.warning("config: analyst.snapshot is deprecated; rename it to analyst.copy (same meaning)")
    days = a.get("retention_days")
    parquet = a.get("parquet")
    worker = a.get("parquet_worker")
    worker = "" if worker is None else _string(worker, "analyst.parquet_worker")
    if worker and not WORKER_ID.fullmatch(worker):
        raise ConfigError(
            f"analyst.parquet_worker: 1-64 letters, digits, '_', '.', '-' (it names a folder), got {worker!r}"
        )
    every = parse_duration(a.get("parquet_every", d.parquet_every_s), "analyst.parquet_every")
    if every < 1:
        raise ConfigError(f"analyst.parquet_every: must be at least 1s, got {a.get('parquet_every')!r}")
    return AnalystSettings(
        freshness_s=freshness,
        copy=None if copy is None else Path(_string(copy, key)),
        retention_days=None if days is None else _integer(days, "analyst.retention_days", 1),
        parquet=None if parquet is None else Path(_string(parquet, "analyst.parquet")),
        parquet_worker=worker,
        parquet_every_s=every,
    )


WORKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def host_worker_id() -> str:
    """The host name as a worker id: unique per container when compose scales a service."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:64].lstrip("-_.")
    return name or "worker"


_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://\S+$")


def runbook_base(value: Any, key: str) -> str:
    """A runbook base: an http(s) URL or a relative path, without spaces or a trailing slash."""
    text = _string(value, key).rstrip("/")
    if not text or any(c.isspace() for c in text):
        raise ConfigError(f"{key}: expected a URL or path without spaces, got {value!r}")
    scheme = _URL_SCHEME.match(text)
    if "://" in text and (scheme is None or scheme.group(1).lower() not in ("http", "https")):
        raise ConfigError(f"{key}: expected an http(s):// URL or a relative path, got {value!r}")
    return text


def _alerts(raw: Any) -> AlertsSettings:
    a = _table(raw, "alerts", {"runbook_url"})
    return AlertsSettings(runbook_url=runbook_base(a.get("runbook_url", RUNBOOK_URL), "alerts.runbook_url"))


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Validate a parsed TOML document (see callpulse.example.toml)."""
    _table(
        raw,
        "",
        {"site", "pipeline", "defaults", "queues", "kafka", "exporter", "wallboard", "analyst", "alerts"},
    )
    site = _table(raw.get("site", {}), "site", {"timezone"})
    tz = _string(site.get("timezone", "UTC"), "site.timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"site.timezone: unknown time zone {tz!r} (use an IANA name such as Europe/Berlin)") from None
    pipe = _table(raw.get("pipeline", {}), "pipeline", {"db", "interval", "windows", "batch_size", "max_future"})
    interval_s = parse_duration(pipe.get("interval", 900), "pipeline.interval")
    if interval_s < 60 or interval_s != int(interval_s) or 86400 % int(interval_s):
        raise ConfigError(
            f"pipeline.interval: must be whole minutes dividing a day (5m, 15m, 30m, 1h), got {pipe.get('interval')!r}"
        )
    windows_raw = pipe.get("windows", ["5m", "15m", "1h"])
    if not isinstance(windows_raw, list) or not windows_raw:
        raise ConfigError(f"pipeline.windows: expected a list of durations, got {windows_raw!r}")
    windows = tuple((str(w), int(parse_duration(w, "pipeline.windows"))) for w in windows_raw)
    defaults = _queue_settings(raw.get("defaults", {}), "defaults", QueueSettings())
    queues_raw = raw.get("queues", {})
    if not isinstance(queues_raw, dict):
        raise ConfigError(f"queues: expected a table of queues, got {queues_raw!r}")
    queues = {name: _queue_settings(q, f"queues.{name}", defaults) for name, q in queues_raw.items()}
    return Config(
        db=Path(_string(pipe.get("db", "data/callpulse.duckdb"), "pipeline.db")),
        timezone=tz,
        interval_s=int(interval_s),
        windows=windows,
        batch_size=_integer(pipe.get("batch_size", Config().batch_size), "pipeline.batch_size", 1),
        max_future_s=parse_duration(pipe.get("max_future", 300), "pipeline.max_future"),
        defaults=defaults,
        queues=queues,
        kafka=_kafka(raw.get("kafka", {})),
        exporter=_exporter(raw.get("exporter", {})),
        wallboard=_wallboard(raw.get("wallboard", {})),
        analyst=_analyst(raw.get("analyst", {})),
        alerts=_alerts(raw.get("alerts", {})),
    )


def load_config(path: Path | str | None = None) -> Config:
    """Read ``path`` (or ``callpulse.toml`` in the working folder if present)."""
    if path is None:
        default = Path("callpulse.toml")
        if not default.exists():
            return Config()
        path = default
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; --config must be a file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def pii_key_from_env(required: bool) -> bytes | None:
    """The caller-hash key from ``CALLPULSE_PII_KEY``; None only when not required."""
    value = os.environ.get(PII_KEY_ENV)
    if value:
        key = value.encode("utf-8")
        if len(key) < MIN_PII_KEY_BYTES:
            raise ConfigError(
                f"{PII_KEY_ENV}: too short ({len(key)} bytes; at least {MIN_PII_KEY_BYTES}): "
                "make one with `openssl rand -hex 32`"
            )
        return key
    if required:
        raise ConfigError(
            f"{PII_KEY_ENV}: not set; caller numbers are stored only as a keyed hash, so a key is required"
        )
    return None
