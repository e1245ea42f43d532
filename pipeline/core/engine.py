"""The engine: the one ``process(batch)`` every source calls.

Sources (files, Kafka worker, simulator, adapters) only produce ``RawBatch``es;
the engine validates them, hands them to the store in one transaction, and keeps
the running counters the exporter and the CLI report. No other code path
computes KPIs.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.core.config import Config
from pipeline.core.normalize import Normalized, normalize
from pipeline.core.ownership import EVERYTHING, Ownership
from pipeline.core.pii import CallerHasher, key_fingerprint
from pipeline.core.records import RawBatch
from pipeline.core.store import Store, StoreCounts

Clock = Callable[[], datetime]
RECENT_BATCHES = 4096


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Totals:
    """Running totals since the engine started (for progress, metrics and summaries)."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    accepted_by_source: Counter[str] = field(default_factory=Counter)
    duplicates_by_source: Counter[str] = field(default_factory=Counter)
    dead_by_source_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds_in_process: float = 0.0
    # The latest batch times, bounded so a worker running for months holds a fixed amount;
    # readers take the ones added since their last look by comparing ``batches``.
    recent_batch_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_BATCHES))

    def add(self, source: str, counts: StoreCounts, seconds: float) -> None:
        self.read += counts.read
        self.accepted += counts.accepted
        self.duplicates += counts.duplicates
        self.dead_lettered += counts.dead_lettered
        self.batches += 1
        self.accepted_by_source[source] += counts.accepted
        self.duplicates_by_source[source] += counts.duplicates
        for reason, n in counts.dead_reasons.items():
            self.dead_by_source_reason[(source, reason)] += n
        self.seconds_in_process += seconds
        self.recent_batch_seconds.append(seconds)

    def batch_seconds_since(self, seen: int) -> list[float]:
        """Batch times added after the first ``seen`` batches (as many as are still kept)."""
        new = min(self.batches - seen, len(self.recent_batch_seconds))
        return list(self.recent_batch_seconds)[len(self.recent_batch_seconds) - new :] if new > 0 else []


@dataclass(frozen=True, slots=True)
class BatchResult:
    counts: StoreCounts
    seconds: float


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch validated and ready for the store, with the seconds validation took."""

    batch: RawBatch
    normalized: Normalized
    seconds: float


class Engine:
    """Validates and stores batches; owns the store for its lifetime."""

    def __init__(
        self,
        config: Config,
        store: Store,
        hasher: CallerHasher,
        clock: Clock = wall_clock,
        on_batch: Callable[[BatchResult], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.hasher = hasher
        self.clock = clock
        self.totals = Totals()
        self._listeners: list[Callable[[BatchResult], None]] = [on_batch] if on_batch else []
        self._drain_listeners: list[Callable[[], None]] = []
        # What the exports show: a worker in a group sharing queues replaces it at each
        # assignment (one reference, read by any thread).
        self.ownership: Ownership = EVERYTHING

    @classmethod
    def open(cls, config: Config, pii_key: bytes, db: Path | str | None = None, clock: Clock = wall_clock) -> Engine:
        path = db if db is not None else config.db
        store = Store.open(path, config)
        try:
            hasher = CallerHasher(pii_key)
            store.check_pii_key(key_fingerprint(pii_key), path)
        except BaseException:
            store.close()
            raise
        return cls(config, store, hasher, clock)

    def subscribe(self, listener: Callable[[BatchResult], None], on_drain: Callable[[], None] | None = None) -> None:
        """Call ``listener`` after every stored batch (exporter refresh, breach checks), and
        ``on_drain`` when the source runs dry (``drain``)."""
        self._listeners.append(listener)
        if on_drain is not None:
            self._drain_listeners.append(on_drain)

    def drain(self) -> None:
        """The source ran dry (the end of a replay, a worker stopping): listeners finish what
        they put off between batches (breach evaluation catches up with the watermark), after
        the store's deferred interval recompute (``Store.defer_intervals``)."""
        self.store.finish_intervals()
        for listener in self._drain_listeners:
            listener()

    def process(self, batch: RawBatch) -> BatchResult:
        return self._store(self._prepare(batch))

    def process_stream(self, batches: Iterable[RawBatch]) -> Iterator[BatchResult]:
        """``process`` each batch in order while the next one is read and validated on a
        helper thread.

        polars and DuckDB release the GIL, so with two or more cores reading and
        validating batch n+1 overlaps storing batch n. One batch ahead at most, so memory
        holds two. An error raised by the source or by
        validation is raised here, in order. Not for sources that must see a
        KeyboardInterrupt themselves (``--follow``): they run on the helper thread.
        """
        it = iter(batches)

        def prepare_next() -> _Prepared | None:
            batch = next(it, None)
            return None if batch is None else self._prepare(batch)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="callpulse-prepare") as pool:
            pending = pool.submit(prepare_next)
            while (prepared := pending.result()) is not None:
                pending = pool.submit(prepare_next)
                yield self._store(prepared)

    def process_all(self, batches: Iterable[RawBatch]) -> Totals:
        """Every batch, then ``drain``: what the listeners derive is complete on return."""
        for _ in self.process_stream(batches):
            pass
        self.drain()
        return self.totals

    def _prepare(self, batch: RawBatch) -> _Prepared:
        started = time.perf_counter()
        normalized = normalize(batch, self.hasher, self.clock(), self.config.max_future_s)
        return _Prepared(batch, normalized, time.perf_counter() - started)

    def _store(self, prepared: _Prepared) -> BatchResult:
        started = time.perf_counter()
        batch = prepared.batch
        counts = self.store.apply(
            prepared.normalized, batch.offsets, received_at=self.clock(), source=batch.source, memory=batch.memory
        )
        # validation time + store time: with process_stream the two overlap other batches
        seconds = prepared.seconds + time.perf_counter() - started
        self.totals.add(batch.source, counts, seconds)
        result = BatchResult(counts, seconds)
        for listener in self._listeners:
            listener(result)
        return result

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
