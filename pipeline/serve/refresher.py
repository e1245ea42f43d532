"""Publishing results for the boards: after a batch the ``Refresher`` runs each
registered job against the store and publishes the results (in a long-lived process on
its own thread and DuckDB connection); readers take the latest published value.

Threads: the store is written only on the engine's thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import duckdb

log = logging.getLogger("callpulse.refresher")
# A refresh may take at most 1 / BUSY_FACTOR of the engine thread's time (see Refresher).
BUSY_FACTOR = 3.0
# How much less CPU priority (nice) the background refresher thread takes than the process.
REFRESHER_NICENESS = 10

Job = Callable[[duckdb.DuckDBPyConnection], Any]


def at_most_every(every_s: float, fn: Callable[[], None], clock: Callable[[], float] = time.monotonic) -> Job:
    """A refresh job that calls ``fn`` at its first call and then once ``every_s`` seconds
    have passed since it last did: a job with a slower cadence than the refresher's own
    (engine jobs run after batches, at most every ``Refresher.every_s``)."""
    last = float("-inf")

    def job(_con: duckdb.DuckDBPyConnection) -> None:
        nonlocal last
        now = clock()
        if now - last >= every_s:
            last = now
            fn()

    return job


class Published:
    """The latest result of each refresh job, by name (replaced whole, never mutated)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._lock = threading.Lock()

    def set(self, name: str, value: Any) -> None:
        with self._lock:
            self._values[name] = value

    def get(self, name: str, default: Any = None) -> Any:
        with self._lock:
            return self._values.get(name, default)


class Refresher:
    """Runs the refresh jobs at most every ``every_s`` seconds after a batch (and on demand);
    ``every_s`` 0: after every batch.

    Where jobs run: by default on the engine's thread, as an engine listener. After
    ``start_background()`` the read-only jobs (boards, /metrics, breaches) run on a
    thread of their own through a second DuckDB connection of the same database, so a
    batch never waits for a board query. The jobs of one cycle share one read transaction
    on that connection, so they all see the same batches (the wallboard's tiles and lists,
    /metrics: one moment), never one stored between two of them. Jobs added with
    ``engine=True`` (they change stored data: retention) always run on the engine thread.

    Jobs added with ``live=True`` are pushed: they run right after every batch commits (in
    the order added, before the read-only jobs), so what a batch changed reaches its readers
    without waiting for a cycle. In the background they run on a publisher thread of their
    own, through a third connection and in one read transaction (the moment the batch
    committed, or a later one), at full priority: the engine stores the next batch
    meanwhile instead of waiting for the snapshot, so on two cores a batch's cycle is the
    store's alone. Batches committed while a publication runs are covered by the next one.
    They must cost in proportion to the batch (or less), never to the stored history: the
    live tiles and counters, not the boards' lists. The engine calls ``push`` (a listener of
    its own, subscribed before those that should not hold the live jobs back) to start them,
    and the refresher itself for the rest; a refresher subscribed alone pushes from there.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        published: Published,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.con = con
        self.clock = clock
        self.published = published
        self.every_s = every_s
        self.jobs: dict[str, Job] = {}
        self.engine_jobs: set[str] = set()
        self.live_jobs: set[str] = set()
        self.failures: Counter[str] = Counter()
        self.took_s = 0.0  # how long the last refresh took
        self._last = 0.0
        self._pending = False  # a batch arrived that no refresh has published yet
        self._last_engine = float("-inf")
        self._lock = threading.Lock()  # one refresh at a time
        self._reader: duckdb.DuckDBPyConnection | None = None
        self._reading = False  # a cycle's read transaction is open on the reader
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        # The publisher thread: batches committed and published so far (counted), under _pushed.
        self._publisher: duckdb.DuckDBPyConnection | None = None
        self._publish_thread: threading.Thread | None = None
        self._pushed = threading.Condition()
        self._committed = 0
        self._published_upto = 0
        self._live_lock = threading.Lock()  # one run of the live jobs at a time
        self._push_subscribed = False  # push has been called: the engine has it as a listener

    def add(self, name: str, job: Job, engine: bool = False, live: bool = False) -> None:
        self.jobs[name] = job
        if engine:
            self.engine_jobs.add(name)
        if live:
            self.live_jobs.add(name)

    @property
    def background(self) -> bool:
        return self._thread is not None

    @property
    def live_connection(self) -> duckdb.DuckDBPyConnection:
        """The connection the live jobs read through (the publisher's in the background)."""
        return self._publisher or self.con

    def start_background(self) -> None:
        """Run the read-only jobs on a refresher thread from now on (engine thread call)."""
        if self._thread is not None or self.every_s <= 0:
            return
        self._reader = self.con.cursor()
        self._publisher = self.con.cursor()
        self._thread = threading.Thread(target=self._loop, name="refresher", daemon=True)
        self._thread.start()
        self._publish_thread = threading.Thread(target=self._publish_loop, name="publisher", daemon=True)
        self._publish_thread.start()

    def stop(self) -> None:
        """Stop the refresher and publisher threads (after their current refresh) and close
        their connections."""
        thread, self._thread = self._thread, None
        publisher, self._publish_thread = self._publish_thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join()
        if publisher is not None:
            with self._pushed:
                self._pushed.notify_all()
            publisher.join()
        if self._publisher is not None:
            with contextlib.suppress(duckdb.Error):
                self._publisher.close()
            self._publisher = None
        if self._reader is not None:
            with contextlib.suppress(duckdb.Error):
                self._reader.close()
            self._reader = None
            self._reading = False

    def push(self, _result: object = None) -> None:
        """A batch committed: in the background, the publisher thread starts on its live jobs
        now. An engine listener of its own, subscribed before the ones that still work on the
        engine thread after a commit (the breach check), so the live tiles and counters never
        wait for them; it does nothing until ``start_background`` (``__call__`` publishes then)."""
        self._push_subscribed = True
        if self.background:
            self._count_commit()

    def _count_commit(self) -> None:
        with self._pushed:
            self._committed += 1
            self._pushed.notify_all()

    def __call__(self, _result: object = None) -> None:
        # Under load the jobs (board and snapshot queries) must not crowd out ingestion:
        # the next refresh waits at least BUSY_FACTOR times as long as the last one took
        # (``every_s`` 0 means after every batch, whatever it costs: tests, tools).
        if self.background:
            if not self._push_subscribed:  # subscribed alone: the batch is pushed from here
                self._count_commit()
            self._pending = True
            self._wake.set()
            self._run_engine_jobs()
        elif self._due():
            self.refresh_now()
        else:
            self._run_live_jobs()
            self._pending = True  # published by the next batch, or by tick() if none comes

    def tick(self) -> None:
        """Publish a batch the cadence skipped, once a refresh is due: an idle pipeline calls
        this (on the engine thread) so the last batch before a quiet spell reaches the boards.
        In the background, the refresher thread does this itself."""
        if self.background:
            self._run_engine_jobs()
        elif self._pending and self._due():
            self.refresh_now()

    def _due(self) -> bool:
        wait = max(self.every_s, BUSY_FACTOR * self.took_s) if self.every_s > 0 else 0.0
        return self.clock() - self._last >= wait

    def refresh_now(self) -> None:
        """Run every job now (engine thread); a failing job keeps its last published value
        and is logged and counted, but never stops ingestion."""
        if not self.background:
            self._refresh(self._live_first(), self.con)
            return
        self._run_live_jobs()
        self._run_engine_jobs(force=True)
        self._refresh_reader()

    def _run_live_jobs(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """The pushed jobs, through ``con`` (default: the engine's, on its thread)."""
        with self._live_lock:
            for name in self.jobs:
                if name in self.live_jobs:
                    self._run_job(name, con or self.con)

    def wait_published(self, timeout: float = 30.0) -> bool:
        """Wait until the live jobs have published every batch committed before this call
        (at once if they run on the engine thread); whether they did within ``timeout``."""
        with self._pushed:
            target = self._committed
            return self._pushed.wait_for(
                lambda: self._published_upto >= target or self._publish_thread is None, timeout
            )

    def _publish_loop(self) -> None:
        """The publisher thread: after each commit, the live jobs in one read transaction."""
        con = self._publisher
        assert con is not None
        while True:
            with self._pushed:
                self._pushed.wait_for(lambda: self._committed > self._published_upto or self._publish_thread is None)
                if self._publish_thread is None:
                    return
                target = self._committed
            con.begin()
            try:
                self._run_live_jobs(con)
            finally:
                with contextlib.suppress(duckdb.Error):  # a failed job rolled back already
                    con.commit()
            with self._pushed:
                self._published_upto = target
                self._pushed.notify_all()

    def _run_engine_jobs(self, force: bool = False) -> None:
        """The jobs that write, on the engine thread, at most every ``every_s`` seconds."""
        if self.engine_jobs and (force or self.clock() - self._last_engine >= self.every_s):
            self._last_engine = self.clock()
            for name in self.jobs:
                if name in self.engine_jobs:
                    self._run_job(name, self.con)

    def _refresh_reader(self) -> None:
        """The read-only jobs, through the refresher's own connection, as of now: a cycle of
        the refresher thread in progress reads an older moment, so its read ends here (the
        jobs it has still to run read a new one)."""
        with self._lock:
            if self._reader is not None:
                self._end_reading()
                self._begin_reading()
                try:
                    self._refresh(self._reader_jobs(), self._reader)
                finally:
                    self._end_reading()

    # One read transaction per cycle: every read-only job of a cycle (the snapshot, the
    # wallboard's lists, /metrics) sees the database as of one moment, however many batches
    # commit between its jobs; a read transaction never holds a batch up.
    def _begin_reading(self) -> None:
        if self._reader is not None and not self._reading:
            self._reader.begin()
            self._reading = True

    def _end_reading(self) -> None:
        if self._reader is not None and self._reading:
            self._reading = False
            with contextlib.suppress(duckdb.Error):
                self._reader.commit()

    def _live_first(self) -> list[str]:
        """Every job, the live ones first (each group in the order added), as the publisher and
        the refresher run them in the background: the boards read the snapshot of this moment."""
        return [n for n in self.jobs if n in self.live_jobs] + [n for n in self.jobs if n not in self.live_jobs]

    def _reader_jobs(self) -> list[str]:
        """The read-only jobs, in the order they were added (later ones read earlier ones)."""
        return [n for n in self.jobs if n not in self.engine_jobs and n not in self.live_jobs]

    def _loop(self) -> None:
        """One job at a time, each followed by a pause of (BUSY_FACTOR - 1) times its own
        duration: the same share of the time as running them back to back, but a batch
        stored meanwhile overlaps one job's queries, not all of them: on a small machine a
        batch that waits for a whole refresh is the slowest batch of the stream. The thread
        runs at a lower priority: where the CPU is short, ingestion goes first."""
        lower_thread_priority(REFRESHER_NICENESS)
        cycle: list[str] = []  # the jobs still to run for the batches pending at its start
        started = took = next_at = 0.0
        while not self._stopping.is_set():
            now = self.clock()
            if not cycle and self._pending and self._due():
                cycle = self._reader_jobs()
                self._pending = False
                started, took, next_at = now, 0.0, now
            if cycle and now >= next_at:
                name = cycle.pop(0)
                with self._lock:
                    if self._reader is not None:
                        self._begin_reading()
                        self._run_job(name, self._reader)
                        if not cycle:
                            self._end_reading()
                spent = self.clock() - now
                took += spent
                next_at = self.clock() + (BUSY_FACTOR - 1) * spent
                if not cycle:
                    self._last, self.took_s = started, took
                continue
            self._wake.wait(timeout=max(0.0, next_at - now) if cycle else 0.25)
            self._wake.clear()

    def _refresh(self, names: Iterable[str], con: duckdb.DuckDBPyConnection) -> None:
        started = self._last = self.clock()
        self._pending = False
        for name in names:
            self._run_job(name, con)
        self.took_s = self.clock() - started

    def _run_job(self, name: str, con: duckdb.DuckDBPyConnection) -> None:
        try:
            self.published.set(name, self.jobs[name](con))
        except Exception:  # noqa: BLE001 - a board or snapshot bug must not stop the pipeline
            self.failures[name] += 1
            with contextlib.suppress(duckdb.Error):
                con.rollback()  # a job that failed inside its own transaction
            if con is self._reader and self._reading:
                self._reading = False  # that rollback ended the cycle's read transaction
                self._begin_reading()  # the rest of the cycle still reads one moment
            if self.failures[name] == 1 or self.failures[name] % 100 == 0:
                log.exception(
                    "refresh job %r failed (%d times so far); serving its last result", name, self.failures[name]
                )


def lower_thread_priority(niceness: int) -> None:
    """Lower the calling thread's CPU priority by ``niceness`` (Linux sets it per thread;
    elsewhere it would apply to the whole process, so nothing is done there). DuckDB runs a
    query on the thread that asked for it when the database has one thread (the worker's
    default): the priority then covers the thread's queries too."""
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError as exc:  # a sandbox may refuse it; the refresher still works
        log.debug("could not lower the refresher's priority: %r", exc)
