"""Engine.process_stream: the next batch is read and validated on a helper thread while
the current one is stored; results, totals and errors stay in the source's order."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from pipeline.core.engine import BatchResult
from pipeline.core.records import RawBatch
from tests import helpers


def batches(sizes: list[int]) -> list[RawBatch]:
    out, start = [], 0
    for n in sizes:
        records = [helpers.offered(f"c{start + i}", (start + i) % 60) for i in range(n)]
        out.append(helpers.batch(records, "test", start))
        start += n
    return out


def test_results_come_in_order_and_everything_is_stored() -> None:
    eng = helpers.engine()
    sizes = [3, 1, 5, 2]
    results = list(eng.process_stream(batches(sizes)))
    assert [r.counts.read for r in results] == sizes
    assert [r.counts.accepted for r in results] == sizes
    assert eng.totals.accepted == 11 and eng.totals.batches == 4
    assert helpers.one(eng, "SELECT count(*) AS n FROM call_events")["n"] == 11


def test_the_next_batch_is_read_while_the_current_one_is_stored() -> None:
    eng = helpers.engine()
    asked_for_second = threading.Event()
    seen: list[bool] = []
    readers: set[str] = set()

    def source() -> Iterator[RawBatch]:
        first, second = batches([2, 2])
        readers.add(threading.current_thread().name)
        yield first
        asked_for_second.set()
        yield second

    def on_batch(result: BatchResult) -> None:
        # Storing batch 1 ends here; read one at a time, batch 2 would not be asked for yet.
        if not seen:
            seen.append(asked_for_second.wait(timeout=10))

    eng.subscribe(on_batch)
    eng.process_all(source())
    assert seen == [True]
    assert all(name.startswith("callpulse-prepare") for name in readers)
    assert eng.totals.accepted == 4


def test_an_error_in_the_source_is_raised_after_the_batches_before_it() -> None:
    eng = helpers.engine()

    def source() -> Iterator[RawBatch]:
        yield from batches([2, 3])
        raise OSError("disk gone")

    stored: list[int] = []
    with pytest.raises(OSError, match="disk gone"):
        for result in eng.process_stream(source()):
            stored.append(result.counts.accepted)
    assert stored == [2, 3]
    assert helpers.one(eng, "SELECT count(*) AS n FROM call_events")["n"] == 5
