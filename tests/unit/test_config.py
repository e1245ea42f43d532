from pathlib import Path

import pytest

from pipeline.core.config import Config, ConfigError, config_from_dict, load_config, parse_duration

EXAMPLE = Path(__file__).resolve().parents[2] / "callpulse.example.toml"


def test_defaults_follow_design() -> None:
    cfg = config_from_dict({})
    q = cfg.for_queue("any")
    assert (q.sl_threshold_s, q.sl_formula, q.short_abandon_s, q.min_calls) == (15, "negative", 5, 10)
    assert (q.repeat_window_s, q.orphan_after_s) == (86400, 14400)
    assert (q.targets.service_level, q.targets.abandon_rate, q.targets.asa_s, q.targets.oldest_wait_s) == (
        0.80,
        0.05,
        30,
        120,
    )
    assert cfg.interval_s == 900
    assert cfg.windows == (("5m", 300), ("15m", 900), ("1h", 3600))


def test_queue_overrides_inherit_global_defaults() -> None:
    cfg = config_from_dict(
        {
            "defaults": {"sl_threshold_s": 20, "targets": {"asa_s": 25}},
            "queues": {"vip": {"sl_formula": "positive", "targets": {"service_level": 0.9}}},
        }
    )
    vip = cfg.for_queue("vip")
    assert vip.sl_formula == "positive"
    assert vip.sl_threshold_s == 20  # from [defaults]
    assert vip.targets.asa_s == 25  # from [defaults.targets]
    assert vip.targets.service_level == 0.9  # own override
    assert cfg.for_queue("other").sl_formula == "negative"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"defaults": {"sl_formula": "cisco"}}, "defaults.sl_formula: must be one of"),
        (
            {"queues": {"b": {"targets": {"service_level": 1.5}}}},
            "queues.b.targets.service_level: must be between 0 and 1",
        ),
        ({"queues": {"b": {"colour": "red"}}}, "queues.b.colour: unknown key"),
        ({"pipeline": {"interval": "7m"}}, "pipeline.interval: must be whole minutes dividing a day"),
        ({"defaults": {"orphan_after": "soon"}}, "defaults.orphan_after: expected a duration"),
        ({"defaults": {"min_calls": 2.5}}, "defaults.min_calls: expected a whole number"),
        ({"site": {"timezone": "Mars/Olympus"}}, "site.timezone: unknown time zone"),
        ({"exporter": {"per_agent": "yes"}}, "exporter.per_agent: expected true or false"),
        ({"typo": 1}, "typo: unknown key"),
        ({"kafka": {"duckdb_threads": -1}}, "kafka.duckdb_threads: must be at least 0"),
        ({"kafka": {"duckdb_threads": "all"}}, "kafka.duckdb_threads: expected a whole number"),
        ({"kafka": {"fetch_wait": "soon"}}, "kafka.fetch_wait: expected a duration"),
        ({"kafka": {"fetch_wait": -1}}, "kafka.fetch_wait: must not be negative"),
        ({"alerts": {"runbook_url": ""}}, "alerts.runbook_url: expected a non-empty string"),
        ({"alerts": {"runbook_url": "ftp://wiki/runbooks"}}, "alerts.runbook_url: expected an http"),
        ({"alerts": {"runbook_url": "my wiki/runbooks"}}, "alerts.runbook_url: expected a URL or path without spaces"),
        ({"alerts": {"runbook": "x"}}, "alerts.runbook: unknown key"),
        ({"wallboard": {"stale_after": 0}}, "wallboard.stale_after: must be more than 0"),
        ({"wallboard": {"stale_after": "soon"}}, "wallboard.stale_after: expected a duration"),
        ({"wallboard": {"stale": "2m"}}, "wallboard.stale: unknown key"),
        ({"analyst": {"parquet_worker": "../w1"}}, "analyst.parquet_worker: 1-64 letters, digits"),
        ({"analyst": {"parquet_worker": ""}}, "analyst.parquet_worker: expected a non-empty string"),
        ({"analyst": {"parquet_every": "0s"}}, "analyst.parquet_every: must be at least 1s"),
        ({"analyst": {"parquet": 3}}, "analyst.parquet: expected"),
    ],
)
def test_bad_config_names_key_and_problem(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        config_from_dict(raw)


@pytest.mark.parametrize(
    ("value", "base"),
    [
        (
            "https://git.example.com/callpulse/-/blob/main/docs/runbooks/",
            "https://git.example.com/callpulse/-/blob/main/docs/runbooks",
        ),
        ("docs/runbooks", "docs/runbooks"),
    ],
)
def test_runbook_base_is_read_without_trailing_slash(value: str, base: str) -> None:
    assert Config().alerts.runbook_url == "docs/runbooks"
    assert config_from_dict({"alerts": {"runbook_url": value}}).alerts.runbook_url == base


def test_bad_toml_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "callpulse.toml"
    bad.write_text("[defaults]\nsl_threshold_s = 'fifteen'\n")
    with pytest.raises(ConfigError, match=r"callpulse.toml: defaults.sl_threshold_s: expected a number"):
        load_config(bad)
    bad.write_text("[defaults\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize(("value", "seconds"), [(90, 90), ("90s", 90), ("15m", 900), ("4h", 14400), ("1d", 86400)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "k") == seconds


def test_example_file_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert "complaints" in cfg.queues


def test_the_worker_runs_duckdb_on_one_thread_unless_told_otherwise() -> None:
    assert config_from_dict({}).kafka.duckdb_threads == 1
    assert config_from_dict({"kafka": {"duckdb_threads": 0}}).kafka.duckdb_threads == 0


def test_the_broker_holds_a_fetch_a_tenth_of_a_second_unless_told_otherwise() -> None:
    assert config_from_dict({}).kafka.fetch_wait_s == 0.1
    assert config_from_dict({"kafka": {"fetch_wait": "250ms"}}).kafka.fetch_wait_s == 0.25
    assert config_from_dict({"kafka": {"fetch_wait": 0}}).kafka.fetch_wait_s == 0.0


def test_parquet_store_settings() -> None:
    a = config_from_dict(
        {"analyst": {"parquet": "/srv/store", "parquet_worker": "w-1.a", "parquet_every": "2m"}}
    ).analyst
    assert (a.parquet, a.parquet_worker, a.parquet_every_s) == (Path("/srv/store"), "w-1.a", 120.0)
    assert Config().analyst.parquet is None  # no export unless configured
