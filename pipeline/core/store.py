"""The DuckDB store: one transaction per batch, duplicates ignored, KPIs kept current.

Lifecycle: ``Store.open(path, config)`` creates the schema and writes the queue
settings; ``apply(normalized, offsets)`` stores one batch and, in the same
transaction, refreshes the call state and the interval aggregates the batch
touched, advances the watermark and saves the source offsets; ``close()`` at the
end. Nothing is written outside ``apply`` / ``recompute_intervals`` /
``sync_settings`` / ``rebuild``.

A batch lists the intervals and the callers it touched (``touched_q`` / ``touched_a`` /
``touched_callers``, stored with it); the recompute (``_recompute``) then sets the listed
callers' contact start and next contact in ``call_state`` (the repeat-contact flag) and
rebuilds the listed intervals' aggregates. With ``defer_intervals`` (a long-running
process: pipeline/cli/services.py) the batch leaves it to ``recompute_intervals``, a
transaction of its own run after the commits every few seconds (and before the analysts'
copy, the Parquet export and retention read them): the live tiles and counters read the
calls, not the intervals (nor the repeat-contact flags), so a batch's events reach them
without waiting for the recompute.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipeline.core import call_order, counters, dbfile, sqlfiles
from pipeline.core.config import Config, QueueSettings
from pipeline.core.lookback import StateBounds
from pipeline.core.normalize import Normalized
from pipeline.core.pii import PiiKeyMismatch
from pipeline.core.records import AdapterMemory, AgentMemory, SourceOffset

log = logging.getLogger("callpulse.store")


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What one batch did: records read = accepted + duplicates + dead_lettered."""

    read: int
    accepted: int
    duplicates: int
    dead_lettered: int
    dead_reasons: dict[str, int]
    watermark: datetime | None


class Store:
    """A DuckDB file (or ``:memory:``) holding events, state, KPI aggregates."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config) -> None:
        self.con = con
        self.config = config
        self._known_queues: set[str] = set()
        # Whether a quality record waits for its call's offer (None: ask quality_pending):
        # a batch with neither quality nor such a wait skips the quality counters' statements.
        self._quality_waiting: bool | None = None
        self._state_bounds = StateBounds()
        self.defer_intervals = False
        # Whether touched_q / touched_a may list intervals to recompute: at first (a process
        # stopped before its recompute left them), then after each batch that deferred it.
        self._intervals_due = True

    @classmethod
    def open(cls, path: Path | str, config: Config) -> Store:
        path = str(path)
        if path == ":memory:":
            con = duckdb.connect(path)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            con = dbfile.open_callpulse(path, new_ok=True)
        store = cls(con, config)
        try:
            sqlfiles.run(con, "schema/writer_session")
            store._init_schema()
            store.recompute_intervals()  # what a process stopped before its recompute left listed
        except BaseException:
            con.close()
            raise
        return store

    @classmethod
    def finish_listed(cls, con: duckdb.DuckDBPyConnection, config: Config) -> int:
        """Recompute what a stopped pipeline left listed (``listed_intervals``) on ``con``, a
        writer connection that did not go through ``open``, by the database's own settings:
        its interval length and its stored queue settings, never ``config``'s (which
        ``open`` would write). For tools on a stopped database (retention); how many
        intervals were listed."""
        listed = listed_intervals(con)
        state = sqlfiles.first(con, "schema/pipeline_state") if listed else None
        if state is not None:  # the callers' contacts too: a batch lists them with the intervals
            sqlfiles.run(con, "schema/scratch_tables")
            cls(con, replace(config, interval_s=int(state[1]))).recompute_intervals()
        return listed

    def close(self) -> None:
        try:
            self.finish_intervals()
        finally:
            self.con.close()

    def finish_intervals(self) -> None:
        """``recompute_intervals`` on the way out (a drain, a close): a failure is logged, not
        raised, so it never hides the error that stops a run; the intervals stay listed and
        the next open recomputes them."""
        try:
            self.recompute_intervals()
        except duckdb.Error as exc:
            log.warning("interval aggregates left for the next start (%s): %s", type(exc).__name__, exc)

    def check_pii_key(self, fingerprint: str, where: object) -> None:
        """Record the PII key's fingerprint on first use; refuse another key afterwards
        (``where``: the database, for the message). A database from before fingerprints
        adopts the first key it is opened with."""
        row = sqlfiles.first(self.con, "schema/pii_key_fingerprint")
        stored = row[0] if row else None
        if stored is None:
            sqlfiles.run(self.con, "schema/set_pii_key_fingerprint", fingerprint=fingerprint)
        elif stored != fingerprint:
            raise PiiKeyMismatch(where, stored, fingerprint)

    def set_threads(self, threads: int) -> None:
        """DuckDB's threads for every connection of this database (0: leave DuckDB's default)."""
        if threads > 0:
            sqlfiles.run(self.con, "schema/set_threads", threads=threads)

    # -- schema and settings -------------------------------------------------

    def _init_schema(self) -> None:
        sqlfiles.run(self.con, "schema/tables")
        sqlfiles.run(self.con, "schema/scratch_tables")
        # At every open, not only for a database from before agent_last: a version without
        # it may have stored agent events since (a rollback). One aggregate of agent_events.
        with sqlfiles.transaction(self.con):
            sqlfiles.run(self.con, "ingest/refill_agent_last")
        row = sqlfiles.first(self.con, "schema/pipeline_state")
        sqlfiles.run(
            self.con, "schema/init_pipeline_state", interval_s=self.config.interval_s, timezone=self.config.timezone
        )
        sqlfiles.run(self.con, "schema/views")
        self._known_queues = {r[0] for r in sqlfiles.rows(self.con, "schema/stored_queues")}
        self.sync_settings(interval_changed=row is not None and row[1] != self.config.interval_s)

    def sync_settings(self, interval_changed: bool = False) -> None:
        """Write the config's queue settings; rebuild the aggregates if KPI settings changed."""
        queues = set(self.config.queues) | self._known_queues
        changed = interval_changed
        with sqlfiles.transaction(self.con):
            sqlfiles.run(
                self.con,
                "schema/update_pipeline_settings",
                interval_s=self.config.interval_s,
                timezone=self.config.timezone,
            )
            for queue in sorted(queues):
                changed |= self._upsert_queue(queue, self.config.for_queue(queue))
            self._seed_counters()
        has_events = sqlfiles.first(self.con, "schema/has_events")
        if changed and has_events and has_events[0]:
            self.resettle(interval_changed)

    def _seed_counters(self) -> None:
        """Counter rows for new queues and new wait-bucket bounds (pipeline/core/counters.py)."""
        sqlfiles.run(self.con, "schema/seed_counters", bounds=list(counters.WAIT_BUCKETS))

    def _upsert_queue(self, queue: str, s: QueueSettings) -> bool:
        values = {
            "queue": queue,
            "sl_threshold_s": s.sl_threshold_s,
            "sl_formula": s.sl_formula,
            "short_abandon_s": s.short_abandon_s,
            "repeat_window_s": s.repeat_window_s,
            "min_calls": s.min_calls,
            "orphan_after_s": s.orphan_after_s,
            "target_service_level": s.targets.service_level,
            "target_abandon_rate": s.targets.abandon_rate,
            "target_asa_s": s.targets.asa_s,
            "target_oldest_wait_s": s.targets.oldest_wait_s,
            "poor_mos": s.quality.poor_mos,
            "poor_loss_pct": s.quality.poor_loss_pct,
            "poor_jitter_ms": s.quality.poor_jitter_ms,
            "target_poor_quality_ratio": s.targets.poor_quality_ratio,
        }
        old = sqlfiles.first(self.con, "schema/queue_settings_row", queue=queue)
        if old is not None and list(old) == list(values.values()):
            return False
        sqlfiles.run(self.con, "schema/upsert_queue_settings", **values)
        self._known_queues.add(queue)
        # Targets alone don't change stored aggregates; KPI definitions do.
        return old is not None and list(old[:7]) != list(values.values())[:7]

    # -- one batch -----------------------------------------------------------

    def apply(
        self,
        batch: Normalized,
        offsets: list[SourceOffset] | None = None,
        received_at: datetime | None = None,
        source: str = "",
        memory: list[AdapterMemory] | None = None,
    ) -> StoreCounts:
        """Store a normalized batch and refresh what it touched, in one transaction; the
        exported counters (by ``source``'s kind) are added to in the same transaction."""
        received_at = received_at or datetime.now(UTC)
        calls = batch.calls.unique(subset=["call_id", "queue", "event"], keep="first", maintain_order=True)
        agents = batch.agents.unique(subset=["agent_id", "ts", "state"], keep="first", maintain_order=True)
        qa = batch.qa.unique(subset=["call_id", "agent_id"], keep="first", maintain_order=True)
        quality = batch.quality.unique(subset=["call_id", "leg", "direction"], keep="first", maintain_order=True)
        con = self.con
        try:
            with sqlfiles.transaction(con):
                new_queues = set(calls.get_column("queue").unique().to_list()) - self._known_queues
                for queue in sorted(new_queues):
                    self._upsert_queue(queue, self.config.for_queue(queue))
                if new_queues:
                    self._seed_counters()
                con.register("batch_calls", calls.to_arrow())
                con.register("batch_agents", agents.to_arrow())
                con.register("batch_qa", qa.to_arrow())
                con.register("batch_quality", quality.to_arrow())
                # What is stored of the batch's calls (no call events, nothing to look up)
                known = sqlfiles.frame(con, "ingest/batch_call_state") if calls.height else None
                new_calls = calls
                if known is not None:
                    con.register("batch_known", known.to_arrow())
                    new_calls = call_order.new_call_events(calls, known)
                new_agents = agents
                if agents.height:
                    ts = agents.get_column("ts")
                    new_agents = sqlfiles.frame(con, "ingest/new_agent_events", lo=ts.min(), hi=ts.max())
                new_qa = sqlfiles.frame(con, "ingest/new_qa_evals") if qa.height else qa
                new_quality = sqlfiles.frame(con, "ingest/new_quality_reports") if quality.height else quality
                late_dead = pl.DataFrame(schema={"_row": pl.Int64, "reason": pl.String})
                if known is not None and new_calls.height:
                    late_dead = call_order.call_order_violations(new_calls, known)
                    if late_dead.height:
                        new_calls = new_calls.filter(~pl.col("_row").is_in(late_dead.get_column("_row").implode()))
                dead = pl.concat([batch.dead, batch.dead_letters_for(late_dead)], how="vertical")

                self._insert("ingest/insert_call_events", new_calls)
                if new_calls.height:
                    # Whatever decides by event time from the stored calls (breaches) must
                    # look again from here: a late event, a CDR or a slower partition
                    # changes what was known at minutes already decided.
                    sqlfiles.run(self.con, "ingest/mark_calls_changed", since=new_calls.get_column("ts").min())
                self._insert("ingest/insert_agent_events", new_agents)
                self._insert("ingest/insert_qa_evals", new_qa)
                self._insert("ingest/insert_quality_reports", new_quality)
                if new_quality.height:
                    # quality changes the poor-quality share as of its own time (breaches)
                    sqlfiles.run(self.con, "ingest/mark_calls_changed", since=new_quality.get_column("ts").min())
                if dead.height:
                    con.register("batch_dead", dead.to_arrow())
                    sqlfiles.run(con, "ingest/insert_dead_letters", received_at=received_at)

                old_wm = self.watermark()
                times: list[datetime] = [
                    t
                    for f in (new_calls, new_agents, new_qa, new_quality)
                    if f.height
                    if isinstance(t := f.get_column("ts").max(), datetime)
                ]
                new_wm = max([*times, *([old_wm] if old_wm else [])], default=None)
                if new_wm is not None and new_wm != old_wm:
                    sqlfiles.run(con, "ingest/set_watermark", watermark=new_wm)

                con.register("new_agents", new_agents.to_arrow())
                con.register("new_qa", new_qa.to_arrow())
                con.register(
                    "new_quality",
                    new_quality.select("call_id", "leg", "direction", "mos", "jitter_ms", "loss_pct").to_arrow(),
                )
                touched = new_calls.select("call_id", "queue").unique()
                calls_from = _first_event(known, new_calls) if known is not None else None
                self._refresh(touched, calls_from, old_wm, new_wm, agents_changed=new_agents.height > 0)
                if new_quality.height or (touched.height and self._quality_may_wait()):
                    self._quality_waiting = None  # asked again once this batch has changed it
                    counters.add_quality(con)
                if offsets:
                    sqlfiles.run(
                        con,
                        "ingest/save_offsets",
                        sources=[o.source for o in offsets],
                        partitions=[o.partition for o in offsets],
                        offsets=[o.offset for o in offsets],
                        high_watermarks=[o.high_watermark for o in offsets],
                        updated_at=received_at,
                    )
                if memory:
                    self._save_memory(memory)
                accepted_rows = set(new_calls.get_column("_row").to_list())
                accepted_rows.update(new_agents.get_column("_row").to_list())
                accepted_rows.update(new_qa.get_column("_row").to_list())
                accepted_rows.update(new_quality.get_column("_row").to_list())
                dead_reasons = dead.get_column("reason").to_list()
                accepted = len(accepted_rows)
                duplicates = batch.records - accepted - dead.height
                counters.add_batch(con, source, accepted, duplicates, dead_reasons)
        finally:
            for name in (
                "batch_calls",
                "batch_agents",
                "batch_qa",
                "batch_quality",
                "batch_known",
                "new_agents",
                "new_qa",
                "new_quality",
                "batch_dead",
            ):
                with contextlib.suppress(duckdb.Error):
                    con.unregister(name)

        by_reason: dict[str, int] = {}
        for reason in dead_reasons:
            label = reason.split(":", 1)[0]
            by_reason[label] = by_reason.get(label, 0) + 1
        return StoreCounts(
            read=batch.records,
            accepted=accepted,
            duplicates=duplicates,
            dead_lettered=dead.height,
            dead_reasons=by_reason,
            watermark=new_wm,
        )

    def _save_memory(self, memory: list[AdapterMemory]) -> None:
        agents = [(m, a) for m in memory for a in m.agents]
        sqlfiles.run(
            self.con,
            "ingest/save_adapter_agents",
            sources=[m.source for m in memory],
            partitions=[m.partition for m in memory],
            a_sources=[m.source for m, _ in agents],
            a_partitions=[m.partition for m, _ in agents],
            a_agents=[a.agent_id for _, a in agents],
            a_queues=[list(a.queues) for _, a in agents],
            a_calls=[list(a.calls) for _, a in agents],
            a_paused=[a.paused for _, a in agents],
            a_reasons=[a.reason for _, a in agents],
            a_last_states=[a.last_state for _, a in agents],
            a_last_reasons=[a.last_reason for _, a in agents],
        )

    def _insert(self, query: str, frame: pl.DataFrame) -> None:
        """Run ``query``, an INSERT from the registered ``_insert_frame``, over ``frame``'s stored columns."""
        if frame.height == 0:
            return
        cols = [c for c in frame.columns if c not in ("_row", "position")]
        self.con.register("_insert_frame", frame.select(cols).to_arrow())
        try:
            sqlfiles.run(self.con, query)
        finally:
            self.con.unregister("_insert_frame")

    def _refresh(
        self,
        touched: pl.DataFrame,
        calls_from: datetime | None,
        old_wm: datetime | None,
        new_wm: datetime | None,
        agents_changed: bool,
    ) -> None:
        """Bring call_state and the interval aggregates up to date for what changed."""
        con = self.con
        iv = self.config.interval_s
        sqlfiles.run(con, "ingest/clear_touched")
        if touched.height:
            con.register("_touched", touched.to_arrow())
            sqlfiles.run(con, "ingest/touch_calls")
            con.unregister("_touched")
            sqlfiles.run(con, "ingest/refresh_batch_calls", iv=iv, lo=calls_from, since=self._contacts_from(calls_from))
            sqlfiles.run(con, "ingest/add_call_counters")
        advanced = old_wm is not None and new_wm is not None and new_wm > old_wm
        if advanced:
            orphan = [s.orphan_after_s for s in (self.config.defaults, *self.config.queues.values())]
            sqlfiles.run(
                con,
                "ingest/touch_orphaned_calls",
                iv=iv,
                old_wm=old_wm,
                new_wm=new_wm,
                max_orphan_s=max(orphan),
                min_orphan_s=min(orphan),
            )
        if new_wm is not None and agents_changed:
            sqlfiles.run(con, "ingest/touch_agent_ranges", iv=iv, wm=new_wm)
        sqlfiles.run(con, "ingest/touch_qa_intervals", iv=iv)
        if advanced:  # after touched_a is complete: it leaves those intervals to the recompute
            sqlfiles.run(con, "ingest/extend_open_agents", iv=iv, old_wm=old_wm, new_wm=new_wm)
        if agents_changed:  # after extend_open_agents: it needs each agent's state before the batch
            sqlfiles.run(con, "ingest/update_agent_last")
        if self.defer_intervals:
            self._intervals_due = True
        else:
            self._recompute(new_wm)

    def _contacts_from(self, calls_from: datetime | None) -> datetime | None:
        """The earliest offer whose contact a batch with calls from ``calls_from`` can change
        in a way a KPI sees: a repeat window before them (an earlier call's next contact is
        beyond its window either way), and an orphan span more for the legs of one call."""
        if calls_from is None:
            return None
        # a queue without settings of its own has the defaults
        settings = [self.config.defaults, *self.config.queues.values()]
        return calls_from - timedelta(seconds=max(s.repeat_window_s + s.orphan_after_s for s in settings))

    def recompute_intervals(self) -> None:
        """Recompute the intervals that batches left listed (``defer_intervals``), in a
        transaction of its own; nothing to do if none did since the last call."""
        if not self._intervals_due:
            return
        with sqlfiles.transaction(self.con):
            self._recompute(self.watermark())
        self._intervals_due = False

    def _recompute(self, wm: datetime | None) -> None:
        """The contacts of the callers listed in touched_callers (which lists the intervals of
        the calls they change), the aggregates of the intervals listed in touched_q /
        touched_a, then the lists emptied."""
        iv = self.config.interval_s
        callers = sqlfiles.first(self.con, "ingest/touched_callers_since")
        if callers and callers[0]:
            sqlfiles.run(self.con, "ingest/refresh_next_contact", iv=iv, since=callers[1])
        bounds = {side: (lo, hi) for side, lo, hi in sqlfiles.rows(self.con, "ingest/touched_bounds")}
        step = timedelta(seconds=iv)
        lo, hi = bounds["queue"]
        if lo is not None:
            sqlfiles.run(self.con, "ingest/recompute_queue_intervals", lo=lo, hi=hi + step, iv=iv)
        lo, hi = bounds["agent"]
        if lo is not None and wm is not None:
            sqlfiles.run(
                self.con,
                "ingest/recompute_agent_intervals",
                lo=lo,
                hi=hi + step,
                iv=iv,
                wm=wm,
                before_from=self._state_bounds.since(self.con, lo),
            )
        sqlfiles.run(self.con, "ingest/clear_recomputed")

    def _quality_may_wait(self) -> bool:
        if self._quality_waiting is None:
            row = sqlfiles.first(self.con, "ingest/quality_waiting")
            self._quality_waiting = bool(row and row[0])
        return self._quality_waiting

    def rebuild(self) -> None:
        """Recompute call state and every aggregate from the stored events alone."""
        con = self.con
        iv = self.config.interval_s
        wm = self.watermark()
        with sqlfiles.transaction(con):
            sqlfiles.run(con, "ingest/clear_touched")
            sqlfiles.run(con, "ingest/touch_everything")
            sqlfiles.run(con, "ingest/refill_agent_last")
            if wm is not None:
                sqlfiles.run(con, "ingest/touch_all_agent_intervals", iv=iv, wm=wm)
            sqlfiles.run(con, "ingest/refresh_call_state")
            sqlfiles.run(con, "ingest/touch_call_intervals", iv=iv)
            self._recompute(wm)

    def resettle(self, interval_changed: bool) -> None:
        """Recompute the aggregates after a KPI setting changed, without the raw events.

        Queue intervals come from ``call_state`` (facts that no setting changes and that
        retention keeps), so no KPI history is lost; agent intervals don't depend on queue
        settings and are recomputed only when the interval length changed, from the agent
        events retention kept (older agent rows are then gone: logged).
        """
        # first the intervals batches left listed: resettle_keep_agent_intervals drops the list
        self.recompute_intervals()
        con = self.con
        iv = self.config.interval_s
        wm = self.watermark()
        with sqlfiles.transaction(con):
            sqlfiles.run(con, "ingest/clear_touched")
            sqlfiles.run(con, "ingest/resettle_queue_intervals")
            sqlfiles.run(con, "ingest/touch_call_intervals", iv=iv)
            if interval_changed and wm is not None:
                sqlfiles.run(con, "ingest/resettle_agent_intervals")
                sqlfiles.run(con, "ingest/touch_all_agent_intervals", iv=iv, wm=wm)
            else:
                sqlfiles.run(con, "ingest/resettle_keep_agent_intervals")
            self._recompute(wm)
        if interval_changed:
            log.warning("interval length changed: agent intervals were recomputed from the agent events still kept")

    # -- reads ---------------------------------------------------------------

    def watermark(self) -> datetime | None:
        row = sqlfiles.first(self.con, "schema/pipeline_state")
        return row[0] if row else None

    def offsets(self, source: str) -> dict[int, int]:
        return {p: o for p, o in sqlfiles.rows(self.con, "ingest/source_offsets", source=source)}

    def save_assignment(self, worker: str, generation: int, assigned: list[tuple[str, int]]) -> None:
        """Replace the worker's claim on its (source, partition)s (``worker_partitions``)."""
        with sqlfiles.transaction(self.con):
            sqlfiles.run(
                self.con,
                "ingest/save_assignment",
                worker=worker,
                sources=[s for s, _ in assigned],
                partitions=[p for _, p in assigned],
                generation=generation,
                assigned_at=datetime.now(UTC),
            )

    def adapter_memory(self, source: str, partition: int) -> tuple[AgentMemory, ...]:
        """What a stateful adapter remembered of its agents at the partition's stored offset."""
        return tuple(
            AgentMemory(agent, tuple(queues), tuple(calls), paused, reason, last_state, last_reason)
            for agent, queues, calls, paused, reason, last_state, last_reason in sqlfiles.rows(
                self.con, "ingest/adapter_agents", source=source, partition=partition
            )
        )


def listed_intervals(con: duckdb.DuckDBPyConnection) -> int:
    """How many intervals batches listed for a recompute that has not run: a pipeline
    stopped between a batch and ``recompute_intervals`` (the next ``Store.open`` runs it).
    0 for a database from before the lists were stored."""
    try:
        row = sqlfiles.first(con, "ingest/listed_intervals")
    except duckdb.CatalogException:
        return 0
    return int(row[0]) if row else 0


def _first_event(known: pl.DataFrame, new_calls: pl.DataFrame) -> datetime | None:
    """The earliest event of the batch's calls: new, or stored (call_state holds the time of
    each event kind a call has, and a call has at most one event of each kind)."""
    firsts = [new_calls.get_column("ts").min(), known.select(pl.min_horizontal(call_order.KIND_TIMES).min()).item()]
    times = [t for t in firsts if isinstance(t, datetime)]
    return min(times) if times else None
