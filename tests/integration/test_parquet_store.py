"""The shared Parquet store: three workers' finished rows, read through the analysts'
views, are the rows of one database that stored the whole day.

Three simulated sites (one queue each, their own agents, calls and callers: nothing
crosses from one worker's queues to another's) make one day. Each worker stores its
site in its own DuckDB file and exports after every chunk of the day; a single database
stores every site. The reference is the single database's own tables, filtered in
polars (not by the export's SQL) to what each owning worker had finished by its last
export: a call over by then, an interval ended by then, a breach closed by then.
A late call in an interval already exported must replace that interval's row. Crashes
between the COPY and the rename, and between the rename and the commit, must leave no
duplicate in the files once the next export ran.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from metrics.kpi import breaches
from pipeline.core.engine import Engine
from pipeline.ingest.sources.simulator import QueueSpec, SimConfig, simulate
from pipeline.ops import parquet_store
from pipeline.ops.parquet_store import ParquetExporter
from tests import helpers

SITES = (
    ("w1", QueueSpec("billing", 700, 9, mean_talk_s=240, mean_wrap_s=30, patience_s=90), 11),
    ("w2", QueueSpec("support", 800, 14, mean_talk_s=330, mean_wrap_s=45, patience_s=120), 12),
    ("w3", QueueSpec("sales", 500, 6, mean_talk_s=270, mean_wrap_s=40, patience_s=60), 13),
)
CHUNKS = 6
KEYS = {
    "calls": ["call_id", "queue"],
    "kpi_queue_interval": ["queue", "interval_start"],
    "kpi_agent_interval": ["agent_id", "interval_start"],
    "breaches": ["queue", "kpi", "window", "opened_at"],
    "queue_interval": ["queue", "interval_start"],
    "agent_interval": ["agent_id", "interval_start"],
}


def _at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["at"])


def _site_records(worker: str, queue: QueueSpec, seed: int) -> list[dict[str, Any]]:
    """One site's day, its ids and callers made its own."""
    out = []
    for r in simulate(SimConfig(seed=seed, queues=(queue,))):
        r = dict(r)
        for field in ("call_id", "agent_id", "case_id"):
            if r.get(field):
                r[field] = f"{worker}-{r[field]}"
        if r.get("caller"):
            r["caller"] = r["caller"] + worker[-1]
        out.append(r)
    return out


def _chunks(records: list[dict[str, Any]], bounds: list[datetime]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[] for _ in range(len(bounds) + 1)]
    for r in records:
        out[sum(_at(r) >= b for b in bounds)].append(r)
    return out


def _open(db: Path) -> Engine:
    eng = helpers.engine(db)
    breaches.attach(eng, every_s=0)
    return eng


def _feed(eng: Engine, records: list[dict[str, Any]], start: int) -> None:
    if records:
        eng.process(helpers.batch(records, start=start))
    eng.drain()


def _finished(
    single: Engine, frontier: dict[str, datetime], owner: dict[str, str], deciders: list[Engine]
) -> dict[str, pl.DataFrame]:
    """The single database's rows each owning worker had finished by its frontier,
    decided here in polars, apart from the export's SQL.

    Breaches come from the databases that decided them (``deciders``): a breach is decided
    once, at the minute the deciding process's watermark passes, from what it stored by
    then; one database storing three sites has its watermark pushed by the fastest site, so
    it decides another site's minutes before that site's events for them arrived (the
    caveat of docs/metrics-and-alerts.md). Each worker decides its own queues' minutes."""

    def upto(frame: pl.DataFrame, by: str) -> pl.Series:
        return pl.Series([frontier[owner[k]] for k in frame.get_column(by)], dtype=frame.schema["_t"])

    calls = helpers.frame(single, "SELECT * FROM calls")
    done_at = (
        pl.when(pl.col("outcome") == "answered")
        .then(pl.col("ended_at"))
        .when(pl.col("outcome") == "abandoned")
        .then(pl.col("abandoned_at"))
        .when(pl.col("outcome") == "exited")
        .then(pl.col("exited_at"))
    )
    calls = calls.with_columns(_t=done_at)
    calls = calls.filter(pl.col("_t").is_not_null() & (pl.col("_t") <= upto(calls, "queue"))).drop("_t")

    def intervals(view: str, by: str) -> pl.DataFrame:
        f = helpers.frame(single, f"SELECT * FROM {view}")
        f = f.with_columns(_t=pl.col("interval_start") + pl.duration(seconds=pl.col("interval_s")))
        return f.filter(pl.col("_t") <= upto(f, by)).drop("_t")

    agents = helpers.frame(single, "SELECT * FROM kpi_agent_interval")
    agents = agents.with_columns(_site=pl.col("agent_id").str.slice(0, 2))
    b = pl.concat([helpers.frame(e, "SELECT * FROM breaches") for e in deciders]).with_columns(_t=pl.col("closed_at"))
    b = b.filter(pl.col("_t").is_not_null() & (pl.col("_t") <= upto(b, "queue"))).drop("_t")
    agent_iv = agents.with_columns(_t=pl.col("interval_start") + pl.duration(seconds=pl.col("interval_s")))
    agent_iv = agent_iv.filter(pl.col("_t") <= upto(agent_iv, "_site")).drop("_t", "_site")
    # The additive sums, with what the reports read beside them (interval length, formula).
    queue_sums = helpers.frame(
        single,
        "SELECT q.*, p.interval_s, coalesce(s.sl_formula, 'negative') AS sl_formula "
        "FROM queue_interval q LEFT JOIN queue_settings s USING (queue) CROSS JOIN pipeline_state p",
    )
    queue_sums = queue_sums.with_columns(_t=pl.col("interval_start") + pl.duration(seconds=pl.col("interval_s")))
    queue_sums = queue_sums.filter(pl.col("_t") <= upto(queue_sums, "queue")).drop("_t")
    agent_sums = helpers.frame(single, "SELECT * FROM agent_interval").with_columns(
        _t=pl.col("interval_start") + pl.duration(seconds=single.config.interval_s),
        _site=pl.col("agent_id").str.slice(0, 2),
    )
    agent_sums = agent_sums.filter(pl.col("_t") <= upto(agent_sums, "_site")).drop("_t", "_site")
    return {
        "calls": calls,
        "kpi_queue_interval": intervals("kpi_queue_interval", "queue"),
        "kpi_agent_interval": agent_iv,
        "breaches": b,
        "queue_interval": queue_sums,
        "agent_interval": agent_sums,
    }


def _view(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    out = pl.from_arrow(con.sql(f"SELECT * FROM {table}").to_arrow_table())
    assert isinstance(out, pl.DataFrame)
    return out


def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Times in one zone name: DuckDB reads Parquet's UTC back as Etc/UTC, the same instants."""
    zoned = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    return frame.with_columns(pl.col(c).dt.convert_time_zone("UTC") for c in zoned)


def _assert_same(root: Path, expected: dict[str, pl.DataFrame]) -> None:
    con = parquet_store.open_views(root)
    present = {t.name for t in parquet_store.tables_present(root)}
    for table, want in expected.items():
        got = _view(con, table) if table in present else None
        assert want.height > 0 or table == "breaches", table
        if got is None:
            assert want.height == 0, f"{table}: no file, {want.height} rows expected"
            continue
        keys = KEYS[table]
        assert set(got.columns) == set(want.columns), table
        got, want = _utc(got), _utc(want)
        extra = want.join(got.select(keys), on=keys, how="anti")
        missing = got.join(want.select(keys), on=keys, how="anti")
        assert extra.height == 0 and missing.height == 0, (table, extra.head(5), missing.head(5))
        assert_frame_equal(_utc(got.sort(keys).select(want.columns)), _utc(want.sort(keys)), check_exact=True)


def _copies_and_versions(root: Path) -> tuple[int, int]:
    """Over every file: rows that repeat another row's content under its key (copies: an
    export that crashed and was not replaced) and further versions of a key with other
    content (a changed row exported again; the views keep the newest)."""
    copies = versions = 0
    for table in parquet_store.tables_present(root):
        files = sorted((root / table.name).glob("day=*/worker=*/*.parquet"))
        rows = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
        content = rows.drop("_seq", "_exported_wm")
        copies += content.height - content.unique().height
        versions += content.unique().height - content.select(KEYS[table.name]).unique().height
    return copies, versions


@pytest.fixture
def day() -> tuple[dict[str, list[list[dict[str, Any]]]], list[list[dict[str, Any]]], dict[str, str]]:
    sites = {w: _site_records(w, q, seed) for w, q, seed in SITES}
    everything = list(heapq.merge(*sites.values(), key=_at))
    first, last = _at(everything[0]), _at(everything[-1])
    step = (last - first) / CHUNKS
    bounds = [first + step * i for i in range(1, CHUNKS)]
    owner = {q.name: w for w, q, _ in SITES} | {w: w for w, _, _ in SITES}
    return {w: _chunks(rs, bounds) for w, rs in sites.items()}, _chunks(everything, bounds), owner


def _late_call(worker: str, queue: str, at: datetime) -> list[dict[str, Any]]:
    """A call offered and abandoned early in the day, arriving after that day was exported."""
    call = {"type": "call", "call_id": f"{worker}-late-1", "queue": queue}
    return [
        call | {"event": "offered", "at": at.isoformat(), "caller": "+861390000000" + worker[-1]},
        call | {"event": "abandoned", "at": (at + timedelta(seconds=40)).isoformat()},
    ]


def test_three_workers_parquet_views_equal_one_database(tmp_path: Path, day) -> None:
    per_worker, single_chunks, owner = day
    root = tmp_path / "parquet"
    workers = {w: _open(tmp_path / f"{w}.duckdb") for w, _, _ in SITES}
    single = _open(tmp_path / "single.duckdb")
    try:
        exporters = {
            w: ParquetExporter(e.store.con, root, w, parquet_store.lookback_s(e.config)) for w, e in workers.items()
        }
        frontier: dict[str, datetime] = {}
        for i in range(CHUNKS):
            _feed(single, single_chunks[i], start=100_000 * i)
            for w, eng in workers.items():
                _feed(eng, per_worker[w][i], start=100_000 * i)
                result = exporters[w].export()
                if result is not None:
                    frontier[w] = result.frontier
        # A late call in billing's (w1's) first hours: that interval was exported already.
        first_offer = min(_at(r) for r in per_worker["w1"][0] if r.get("event") == "offered")
        late = _late_call("w1", "billing", first_offer + timedelta(minutes=20))
        _feed(single, late, start=900_000)
        _feed(workers["w1"], late, start=900_000)
        rewritten = exporters["w1"].export()
        assert rewritten is not None and rewritten.rows >= 2  # the call and its interval at least

        expected = _finished(single, frontier, owner, list(workers.values()))
        _assert_same(root, expected)
        late_row = _view(parquet_store.open_views(root), "calls").filter(pl.col("call_id") == "w1-late-1")
        assert late_row.get_column("outcome").to_list() == ["abandoned"]
        # Changed rows were exported again (the views keep the newest); nothing twice alike.
        copies, versions = _copies_and_versions(root)
        assert copies == 0 and versions >= 1

        # Compaction: one file per worker, day and table; the views give the same rows.
        days = sorted({p.name.removeprefix("day=") for p in (root / "calls").glob("day=*")})
        for d in days:
            parquet_store.compact_day(root, d)
        for table in parquet_store.tables_present(root):
            for folder in (root / table.name).glob("day=*/worker=*"):
                assert len(list(folder.glob("*.parquet"))) == 1, folder
        _assert_same(root, expected)
    finally:
        for eng in (*workers.values(), single):
            eng.close()


def _fail_on(count: int, then: Callable[[Path], None]) -> Callable[[Path], None]:
    seen = [0]

    def hook(path: Path) -> None:
        seen[0] += 1
        if seen[0] == count:
            then(path)

    return hook


class Crash(Exception):
    pass


def _crash(_: Path) -> None:
    raise Crash("killed between the COPY and the rename")


def test_a_crash_between_copy_rename_and_commit_leaves_no_duplicates(
    tmp_path: Path, day, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_worker, _, _ = day
    root = tmp_path / "parquet"
    eng = _open(tmp_path / "w1.duckdb")
    reference = _open(tmp_path / "reference.duckdb")
    try:
        lookback = parquet_store.lookback_s(eng.config)
        chunks = per_worker["w1"]
        for i in range(3):
            _feed(eng, chunks[i], start=100_000 * i)
            _feed(reference, chunks[i], start=100_000 * i)
        ParquetExporter(eng.store.con, root, "w1", lookback).export()

        # 1. Killed after the COPY, before the rename: a temporary file, nothing published.
        _feed(eng, chunks[3], start=300_000)
        _feed(reference, chunks[3], start=300_000)
        before = sorted(root.rglob("*.parquet"))
        with pytest.raises(Crash):
            ParquetExporter(eng.store.con, root, "w1", lookback, before_publish=_fail_on(2, _crash)).export()
        assert sorted(root.rglob("*.parquet")) == sorted(set(before) | set(root.rglob("*.parquet")))
        assert list(root.rglob(f".*{parquet_store.TEMP_SUFFIX}")), "the crash should leave its temporary file"

        # 2. Killed after renaming some files, before the commit: those rows are published
        # but not marked. A restarted exporter removes the temporary file and, at its next
        # export, writes the same rows again under the same number: the files are replaced.
        real_replace = parquet_store.os.replace
        calls = [0]

        def replace_then_die(src: Any, dst: Any) -> None:
            real_replace(src, dst)
            calls[0] += 1
            if calls[0] == 2:
                raise Crash("killed after the rename, before the commit")

        monkeypatch.setattr(parquet_store.os, "replace", replace_then_die)
        with pytest.raises(Crash):
            ParquetExporter(eng.store.con, root, "w1", lookback).export()
        monkeypatch.setattr(parquet_store.os, "replace", real_replace)
        published_unmarked = sorted(set(root.rglob("*.parquet")) - set(before))
        assert published_unmarked, "the second crash should leave published files behind"

        _feed(eng, chunks[4], start=400_000)
        _feed(reference, chunks[4], start=400_000)
        result = ParquetExporter(eng.store.con, root, "w1", lookback).export()
        assert result is not None
        assert not list(root.rglob(f".*{parquet_store.TEMP_SUFFIX}"))
        assert _copies_and_versions(root)[0] == 0
        frontier = {"w1": result.frontier}
        owner = {"billing": "w1", "w1": "w1"}
        _assert_same(root, _finished(reference, frontier, owner, [eng]))
    finally:
        eng.close()
        reference.close()


def test_cli_replay_exports_sql_reads_compact_merges(tmp_path: Path, cli) -> None:
    """`replay` with [analyst] parquet exports at its end; `sql --parquet` reads the views;
    `compact` merges; mistakes end in one line."""
    records = _site_records("w1", SITES[0][1], SITES[0][2])
    half = len(records) // 2
    for name, part in (("first.jsonl", records[:half]), ("second.jsonl", records[half:])):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    (tmp_path / "callpulse.toml").write_text(
        '[analyst]\nparquet = "store"\nparquet_worker = "site-a"\n', encoding="utf-8"
    )
    db = tmp_path / "a.duckdb"
    cli.ok("replay", "first.jsonl", "--db", db, cwd=tmp_path)
    cli.ok("replay", "second.jsonl", "--db", db, cwd=tmp_path)
    files = sorted((tmp_path / "store" / "calls").glob("day=*/worker=site-a/*.parquet"))
    assert [f.name for f in files] == ["000000000001.parquet", "000000000002.parquet"]

    # Independently: the calls of the simulated input that ended (answered and ended,
    # abandoned, exited), counted here from the records.
    over = {r["call_id"] for r in records if r.get("event") in ("ended", "abandoned", "exited")}
    query = "SELECT count(*) AS n FROM calls"
    got = cli.ok("sql", "--parquet", "store", query, "--format", "json", cwd=tmp_path)
    assert json.loads(got.stdout) == [{"n": len(over)}]
    assert "Parquet store store: finished rows of every worker" in got.stderr

    # Reports over the store are the database's own for a day whose intervals are all closed
    # (an agent logging in the next day takes every worker's watermark past it).
    (tmp_path / "next.jsonl").write_text(
        json.dumps({"type": "agent", "agent_id": "w1-x", "state": "login", "at": "2026-03-03T12:00:00+00:00"}) + "\n",
        encoding="utf-8",
    )
    cli.ok("replay", "next.jsonl", "--db", db, cwd=tmp_path)
    for kind in ("daily", "queues", "agents"):
        span = ("--from", "2026-03-02", "--to", "2026-03-03")
        from_db = cli.ok("report", kind, *span, "--db", db, "--format", "csv", cwd=tmp_path)
        from_store = cli.ok("report", kind, *span, "--parquet", "store", "--format", "csv", cwd=tmp_path)
        assert from_store.stdout == from_db.stdout and from_db.stdout.count("\n") > 1, kind
    refused = cli("report", "cases", "--parquet", "store", cwd=tmp_path)
    assert refused.returncode != 0 and "needs one database's copy" in refused.stderr

    day = files[0].parent.parent.name.removeprefix("day=")
    merged = cli.ok("compact", day, "--parquet", "store", cwd=tmp_path)
    assert "compacted" in merged.stderr
    assert len(list((tmp_path / "store" / "calls").glob("day=*/worker=site-a/*.parquet"))) == 1
    again = cli.ok("sql", "--parquet", "store", query, "--format", "json", cwd=tmp_path)
    assert json.loads(again.stdout) == [{"n": len(over)}]

    # The views are read-only to the analyst: no file access outside the store.
    refused = cli("sql", "--parquet", "store", "COPY (SELECT 1) TO '../out.csv'", cwd=tmp_path)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    missing = cli("sql", "--parquet", "nowhere", "SELECT 1", cwd=tmp_path)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "nowhere is not a directory" in missing.stderr


def test_worker_id_is_kept_in_the_database_unless_configured(tmp_path: Path) -> None:
    eng = helpers.engine(tmp_path / "w.duckdb")
    try:
        lookback = parquet_store.lookback_s(eng.config)
        made_up = ParquetExporter(eng.store.con, tmp_path / "store", None, lookback).worker
        assert parquet_store.WORKER_ID.fullmatch(made_up)
        again = ParquetExporter(eng.store.con, tmp_path / "store", None, lookback).worker
        assert again == made_up  # a restarted worker files under the same folder
        other = helpers.engine(tmp_path / "other.duckdb")
        try:
            assert ParquetExporter(other.store.con, tmp_path / "store", None, lookback).worker != made_up
        finally:
            other.close()
        assert ParquetExporter(eng.store.con, tmp_path / "store", "site-a", lookback).worker == "site-a"
        assert ParquetExporter(eng.store.con, tmp_path / "store", None, lookback).worker == "site-a"
        with pytest.raises(parquet_store.ParquetStoreError, match="cannot name a Parquet partition"):
            ParquetExporter(eng.store.con, tmp_path / "store", "../x", lookback)
    finally:
        eng.close()


def test_a_worker_exports_only_the_queues_and_agents_it_owns(tmp_path: Path) -> None:
    """With several workers (route_by_queue) a worker keeps what it stored of queues it
    lost; its exports carry only the queues and agents it owns now. Compared with an
    export of the same records owning everything, filtered here by owner."""
    from pipeline.core.ownership import Ownership, key_partition

    records = list(simulate(SimConfig(seed=2, scale=0.1)))
    partitions = 4
    queues = sorted({r["queue"] for r in records if r["type"] == "call"})
    agents = sorted({r["agent_id"] for r in records if r["type"] == "agent"})
    owned = Ownership(
        assigned=frozenset({("t.calls", key_partition(queues[0], partitions))})
        | frozenset({("t.agents", key_partition(agents[0], partitions))}),
        queue_topic="t.calls",
        queue_partitions=partitions,
        agent_topic="t.agents",
        agent_partitions=partitions,
    )
    mine_q = {q for q in queues if owned.owns_queue(q)}
    mine_a = {a for a in agents if owned.owns_agent(a)}
    assert mine_q and set(queues) - mine_q and mine_a and set(agents) - mine_a  # a real split

    def export(name: str, ownership: Ownership) -> Path:
        eng = helpers.engine(tmp_path / f"{name}.duckdb")
        try:
            eng.process(helpers.batch(records))
            root = tmp_path / name
            lookback = parquet_store.lookback_s(eng.config)
            ParquetExporter(eng.store.con, root, name, lookback, ownership=lambda: ownership).export()
            return root
        finally:
            eng.close()

    part, whole = export("part", owned), export("whole", parquet_store.EVERYTHING)

    def rows(root: Path, table: str, column: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect()
        try:
            files = str(root / table / "**" / "*.parquet")
            query = f"SELECT * EXCLUDE (day, worker) FROM read_parquet('{files}', hive_partitioning = true)"
            return sorted(con.execute(f"SELECT {column}, * FROM ({query})").fetchall(), key=repr)
        finally:
            con.close()

    for table, column, mine in (
        ("calls", "queue", mine_q),
        ("kpi_queue_interval", "queue", mine_q),
        ("queue_interval", "queue", mine_q),
        ("kpi_agent_interval", "agent_id", mine_a),
        ("agent_interval", "agent_id", mine_a),
    ):
        got, everything = rows(part, table, column), rows(whole, table, column)
        assert got and got == [r for r in everything if r[0] in mine], table
