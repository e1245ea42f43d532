"""A failing refresh job (board, snapshot, breaches) must not stop ingestion."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.serve.refresher import Published, Refresher
from tests.helpers import engine, feed, offered


def test_a_failing_job_keeps_its_last_result_and_ingestion_goes_on(tmp_path: Path) -> None:
    eng = engine(tmp_path / "r.duckdb")
    published = Published()
    refresher = Refresher(eng.store.con, published, every_s=0.0)
    runs = {"n": 0}

    def flaky(con: duckdb.DuckDBPyConnection) -> int:
        runs["n"] += 1
        if runs["n"] >= 2:
            con.execute("BEGIN TRANSACTION")  # fails inside its own transaction
            raise RuntimeError("board bug")
        return 41

    refresher.add("flaky", flaky)
    refresher.add("count", lambda con: con.execute("SELECT count(*) FROM call_events").fetchall()[0][0])
    eng.subscribe(refresher)

    feed(eng, [offered("a", 0)])
    feed(eng, [offered("b", 1)])
    feed(eng, [offered("c", 2)])

    assert eng.totals.accepted == 3
    assert published.get("flaky") == 41  # the last good result, still served
    assert published.get("count") == 3  # the other jobs keep running after the failing one
    assert refresher.failures["flaky"] == 2
    # the failed job's open transaction was rolled back: the next batch commits normally
    feed(eng, [offered("d", 3)])
    assert eng.store.con.execute("SELECT count(*) FROM call_events").fetchall()[0][0] == 4
    eng.close()


def test_on_the_engine_thread_the_live_jobs_run_first_as_in_the_background() -> None:
    """Whatever order they were added in, a refresh runs the pushed jobs (in their order)
    before the others, as the publisher does: a board job reads the snapshot of its moment."""
    order: list[str] = []
    refresher = Refresher(duckdb.connect(), Published(), every_s=0.0)
    for name, live in (("counters", True), ("board", False), ("snapshot", True), ("retention", False)):
        refresher.add(name, lambda con, name=name: order.append(name), live=live)
    refresher()
    assert order == ["counters", "snapshot", "board", "retention"]


def test_slow_jobs_are_run_less_often_so_ingestion_keeps_most_of_the_time() -> None:
    now = {"t": 100.0}
    runs: list[float] = []

    def slow(con: duckdb.DuckDBPyConnection) -> None:
        runs.append(now["t"])
        now["t"] += 2.0  # this refresh takes 2 s of the engine thread

    refresher = Refresher(duckdb.connect(), Published(), every_s=1.0, clock=lambda: now["t"])
    refresher.add("slow", slow)
    refresher()  # first batch: refresh (t 100 -> 102)
    assert runs == [100.0] and refresher.took_s == 2.0
    now["t"] = 105.9  # 5.9 s after the last start: under 3 x 2 s, no refresh yet
    refresher()
    assert runs == [100.0]
    now["t"] = 106.0
    refresher()
    assert runs == [100.0, 106.0]


def test_a_batch_the_cadence_skipped_is_published_by_a_later_tick() -> None:
    """The last batch before a quiet spell must reach the boards without another batch."""
    now = {"t": 100.0}
    published = Published()
    seen = {"batches": 0}
    refresher = Refresher(duckdb.connect(), published, every_s=1.0, clock=lambda: now["t"])
    refresher.add("count", lambda con: seen["batches"])
    seen["batches"] = 1
    refresher()  # first batch: published at once
    assert published.get("count") == 1
    now["t"] = 100.5
    seen["batches"] = 2
    refresher()  # second batch within the cadence: not yet
    refresher.tick()  # idle tick before it is due: still not
    assert published.get("count") == 1
    now["t"] = 101.0
    refresher.tick()  # due: the skipped batch is published
    assert published.get("count") == 2
    runs_before = refresher._last
    now["t"] = 105.0
    refresher.tick()  # nothing pending: no refresh
    assert refresher._last == runs_before


def test_in_the_background_a_slow_board_job_never_holds_up_a_batch(tmp_path: Path) -> None:
    """start_background(): read-only jobs on the refresher's thread and connection; jobs that
    write stay on the engine thread; a batch goes through while a board query runs."""
    eng = engine(tmp_path / "b.duckdb")
    published = Published()
    refresher = Refresher(eng.store.con, published, every_s=0.01)
    started, release = threading.Event(), threading.Event()
    ran_on: dict[str, str] = {}

    def slow_board(con: duckdb.DuckDBPyConnection) -> int:
        ran_on["board"] = threading.current_thread().name
        started.set()
        release.wait(10)
        return int(con.execute("SELECT count(*) FROM call_events").fetchall()[0][0])

    def writer(con: duckdb.DuckDBPyConnection) -> bool:
        ran_on["writer"] = threading.current_thread().name
        return con is eng.store.con

    refresher.add("board", slow_board)
    refresher.add("writer", writer, engine=True)
    eng.subscribe(refresher)
    refresher.start_background()
    try:
        feed(eng, [offered("a", 0)])
        assert started.wait(10)  # the board job is running (and blocked) on its thread ...
        feed(eng, [offered("b", 1)])  # ... and the next batch is stored all the same
        assert eng.totals.accepted == 2
        release.set()
        deadline = time.monotonic() + 10
        while published.get("board") != 2 and time.monotonic() < deadline:
            threading.Event().wait(0.02)
        assert published.get("board") == 2  # the batch stored meanwhile reaches the board
        assert published.get("writer") is True  # the writing job got the engine's connection
        assert ran_on == {"board": "refresher", "writer": threading.current_thread().name}
    finally:
        release.set()
        refresher.stop()
        eng.close()


def test_in_the_background_jobs_run_one_at_a_time_with_a_pause_after_each() -> None:
    """A batch overlaps one job's queries, not a whole refresh: after a job that took d
    seconds the next waits (BUSY_FACTOR - 1) * d, so all jobs still take at most
    1 / BUSY_FACTOR of the time, as when they ran back to back."""
    from pipeline.serve.refresher import BUSY_FACTOR

    now = {"t": 100.0}
    ran: dict[str, float] = {}

    def slow(_con: duckdb.DuckDBPyConnection) -> str:
        ran["slow"] = now["t"]
        now["t"] += 1.0  # this job takes a second (of the refresher's clock)
        return "slow"

    def fast(_con: duckdb.DuckDBPyConnection) -> str:
        ran["fast"] = now["t"]
        return "fast"

    published = Published()
    refresher = Refresher(duckdb.connect(), published, every_s=0.01, clock=lambda: now["t"])
    refresher.add("slow", slow)
    refresher.add("fast", fast)
    refresher.start_background()
    try:

        def wait_for(name: str) -> None:
            deadline = time.monotonic() + 10
            while published.get(name) is None and time.monotonic() < deadline:
                refresher._wake.set()
                threading.Event().wait(0.01)
            assert published.get(name) == name

        refresher()  # a batch arrived
        wait_for("slow")
        now["t"] = 102.5  # not yet: the pause after a 1 s job is (BUSY_FACTOR - 1) s
        refresher._wake.set()
        now["t"] = 101.0 + (BUSY_FACTOR - 1) * 1.0
        wait_for("fast")
        assert ran == {"slow": 100.0, "fast": 101.0 + (BUSY_FACTOR - 1) * 1.0}
        deadline = time.monotonic() + 10
        while refresher.took_s != 1.0 and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert (refresher._last, refresher.took_s) == (100.0, 1.0)  # the whole cycle's start and time
    finally:
        refresher.stop()


@pytest.mark.skipif(sys.platform != "linux", reason="thread priorities are per thread on Linux only")
def test_the_background_refresher_runs_at_a_lower_priority_than_ingestion() -> None:
    """Where the CPU is short, a batch goes first: the refresher thread (and, with one DuckDB
    thread, the queries it runs) is niced REFRESHER_NICENESS above the engine thread."""
    from pipeline.serve.refresher import REFRESHER_NICENESS

    def niceness(_con: duckdb.DuckDBPyConnection) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    published = Published()
    refresher = Refresher(duckdb.connect(), published, every_s=0.01)
    refresher.add("nice", niceness)
    refresher.start_background()
    try:
        refresher()
        deadline = time.monotonic() + 10
        while published.get("nice") is None and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert published.get("nice") == min(19, mine + REFRESHER_NICENESS)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # only that thread
    finally:
        refresher.stop()


def test_in_the_background_the_jobs_of_one_cycle_read_one_moment(tmp_path: Path) -> None:
    """Tiles and lists must not disagree: a batch stored between two jobs of a cycle is
    seen by neither (one read transaction per cycle), and by both in the next cycle."""
    eng = engine(tmp_path / "m.duckdb")
    published = Published()
    refresher = Refresher(eng.store.con, published, every_s=0.01)
    first_read, stored = threading.Event(), threading.Event()
    count = "SELECT count(*) FROM call_events"

    def tiles(con: duckdb.DuckDBPyConnection) -> int:
        n = int(con.execute(count).fetchall()[0][0])
        first_read.set()
        return n

    def lists(con: duckdb.DuckDBPyConnection) -> int:
        stored.wait(10)  # the batch below is committed before this job reads
        return int(con.execute(count).fetchall()[0][0])

    refresher.add("tiles", tiles)
    refresher.add("lists", lists)
    feed(eng, [offered("a", 0)])
    eng.subscribe(refresher)
    refresher.start_background()
    try:
        refresher()  # a batch arrived: a cycle starts
        assert first_read.wait(10)
        feed(eng, [offered("b", 1)])  # stored between the cycle's two jobs
        stored.set()
        deadline = time.monotonic() + 10
        while published.get("lists") is None and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert (published.get("tiles"), published.get("lists")) == (1, 1)
        while published.get("lists") != 2 and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert (published.get("tiles"), published.get("lists")) == (2, 2)  # the next cycle
    finally:
        stored.set()
        refresher.stop()
        eng.close()


def test_a_refresh_on_demand_reads_now_even_inside_a_cycle(tmp_path: Path) -> None:
    """refresh_now() (the demo's last board, a worker's shutdown) publishes the database as
    it is now, also while a cycle of the refresher thread is paused between two jobs with
    its read transaction open on an older moment."""
    eng = engine(tmp_path / "m.duckdb")
    published = Published()
    now = {"t": 100.0}
    refresher = Refresher(eng.store.con, published, every_s=0.01, clock=lambda: now["t"])
    count = "SELECT count(*) FROM call_events"

    def tiles(con: duckdb.DuckDBPyConnection) -> int:
        n = int(con.execute(count).fetchall()[0][0])
        if threading.current_thread().name == "refresher":
            now["t"] += 1000.0  # a long job: the cycle pauses (BUSY_FACTOR - 1) x 1000 s before the next
        return n

    def lists(con: duckdb.DuckDBPyConnection) -> int:
        return int(con.execute(count).fetchall()[0][0])

    refresher.add("tiles", tiles)
    refresher.add("lists", lists)
    feed(eng, [offered("a", 0)])
    refresher.start_background()
    try:
        refresher()  # a batch arrived: a cycle starts, runs tiles, and pauses
        deadline = time.monotonic() + 10
        while published.get("tiles") is None and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert (published.get("tiles"), published.get("lists")) == (1, None)
        feed(eng, [offered("b", 1)])
        refresher.refresh_now()
        assert (published.get("tiles"), published.get("lists")) == (2, 2)
    finally:
        refresher.stop()
        eng.close()


def test_in_the_background_live_jobs_are_pushed_from_a_publisher_thread(tmp_path: Path) -> None:
    """The live tiles and counters are published after every batch, but not by the engine:
    while they read, the next batch is stored. wait_published() returns once they have seen
    every batch committed before it was called (batches stored during a publication are
    covered by the next one)."""
    eng = engine(tmp_path / "p.duckdb")
    published = Published()
    refresher = Refresher(eng.store.con, published, every_s=60.0)  # no board cycle meanwhile
    reading, release = threading.Event(), threading.Event()
    ran_on: set[str] = set()

    def tiles(con: duckdb.DuckDBPyConnection) -> int:
        ran_on.add(threading.current_thread().name)
        reading.set()
        release.wait(10)
        return int(con.execute("SELECT count(*) FROM call_events").fetchall()[0][0])

    refresher.add("tiles", tiles, live=True)
    eng.subscribe(refresher)
    refresher.start_background()
    try:
        feed(eng, [offered("a", 0)])
        assert reading.wait(10)  # the publication of the first batch is under way (and blocked) ...
        feed(eng, [offered("b", 1)])  # ... and the engine stores the next one all the same
        assert eng.totals.accepted == 2
        assert published.get("tiles") is None
        release.set()
        assert refresher.wait_published(10)
        assert published.get("tiles") == 2  # the second batch, by the publication after the first
        assert ran_on == {"publisher"}
    finally:
        release.set()
        refresher.stop()
        eng.close()
