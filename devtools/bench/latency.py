"""`make bench BENCH_ARGS="--only latency"`: what a user sees, black box.

A ``callpulse worker`` subprocess (serving ``/metrics`` and ``/api/wallboard``) on its own
real broker; a producer in its own process sends live call and agent events (the
simulator's stream, each record's ``at`` set to the moment it is sent, call ids new)
at a steady rate; this process scrapes ``/metrics`` and the wallboard's feed every
``SCRAPE_EVERY_S``. An offered call's latency is its send time → the first scrape that
counts it: on ``/metrics`` ``callpulse_calls_offered_total{queue}``, in the feed the
queue's ``offered`` (calls offered in the board's rolling window, which holds only live
events here: the stored month ends before today). Per queue both only grow
during a run, so the k-th offered call of a queue is counted once the count is at least
the count before the run plus k.

Before the measured part the producer sends a warm-up (the consumer group joined, the
agents logged in, the watermark moved from the stored history to now) and waits until
both endpoints count it; those counts are the baselines.

Run on an empty database and on a copy of a month of a 500-agent centre
(``simulate --days 30 --scale 5``, ~7.7 M events, the 30 days before today), replayed
once into ``bench-out/`` and reused by later runs that day. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from devtools.bench import percentiles
from devtools.kafka import KafkaBroker
from devtools.procs import ManagedProcess, free_port, wait_until
from pipeline.core.config import KafkaSettings
from pipeline.ingest.sources import kafka
from pipeline.ingest.sources.simulator import SimConfig, simulate

console = Console()
OUT = Path("bench-out")
# The worker is given this key; the cached month database was written with it.
PII_KEY = "bench-key-0123456789abcdef"
MONTH_DAYS, MONTH_SCALE = 30, 5.0
SCRAPE_EVERY_S = 0.05
WARMUP_EVENTS = 3_000
OFFERED_METRIC = "callpulse_calls_offered_total"
READY_TIMEOUT_S = 180.0
# The producer sends what it was given within 5 ms as one request, as Kafka's own producer
# does by default since 4.0 (the worker's router too; `callpulse produce` waits 20 ms);
# that wait is part of every latency measured. One request per event had the broker and the
# producer answer a thousand requests a second on the two cores the worker is measured on.
PRODUCER_LINGER_MS = 5


# The machine's speed during a run: a process of its own times a fixed piece of pure Python
# once a second (a few ms of CPU each). This machine's cores run at half speed and less
# for minutes at a time, so a run's latencies are read beside the speed they ran at.
SPEED_WORK = 200_000
SPEED_EVERY_S = 1.0


def speed_sample_ms(work: int = SPEED_WORK, clock: Callable[[], float] = time.perf_counter) -> float:
    """The time ``work`` additions of squares take, in ms (by ``clock``, in seconds)."""
    started = clock()
    total = 0
    for i in range(work):
        total += i * i
    return (clock() - started) * 1000


@dataclass(frozen=True, slots=True)
class Speed:
    """The speed probe's samples of one run: median and the 10th / 90th percentiles, in ms."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    samples: int


def speed_of(samples: list[float]) -> Speed:
    if len(samples) < 2:
        value = samples[0] if samples else float("nan")
        return Speed(value, value, value, len(samples))
    q = statistics.quantiles(samples, n=10)
    return Speed(statistics.median(samples), q[0], q[8], len(samples))


class SpeedProbe:
    """``speed_sample_ms`` every ``every_s`` in a child process, until ``stop``."""

    def __init__(self, every_s: float = SPEED_EVERY_S) -> None:
        self.samples: list[float] = []
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.bench.latency", "--speed-probe", str(every_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.samples.append(float(line))

    def stop(self) -> Speed:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()  # the probe's end: its stdin runs dry
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # stop runs in the run's finally: never raise over the error that ended the run
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=30)
        return speed_of(self.samples)

    @property
    def exit_code(self) -> int | None:
        """The probe process's exit code once stopped (0: it ended as its stdin closed)."""
        return self._proc.returncode


def _probe(every_s: float) -> None:
    """The probe process: a sample every ``every_s`` (one per line) until stdin runs dry."""
    while not select.select([sys.stdin], [], [], every_s)[0]:
        print(f"{speed_sample_ms():.3f}", flush=True)


@dataclass(frozen=True, slots=True)
class Memory:
    """A process's resident memory: now and its peak, in MiB (from ``/proc/<pid>/status``)."""

    rss_mib: float
    peak_mib: float


def memory_from_status(status: str) -> Memory:
    """The ``VmRSS`` and ``VmHWM`` (peak resident) lines of a ``/proc/<pid>/status`` text."""
    fields = (line.partition(":") for line in status.splitlines())
    kib = {k: int(v.split()[0]) for k, _, v in fields if k in ("VmRSS", "VmHWM")}
    return Memory(kib["VmRSS"] / 1024, kib["VmHWM"] / 1024)


@dataclass(frozen=True, slots=True)
class Scrape:
    """One scrape: when its answer arrived and the offered count per queue it showed."""

    at: float
    offered: dict[str, int]


def month_db() -> Path:
    """The month database: the 30 site-local days before today (a worker that has run for a
    month, its agents last seen yesterday), simulated and replayed on first use, then
    reused for the rest of the day (an older one is replaced)."""
    first = datetime.now(ZoneInfo(SimConfig().tz)).date() - timedelta(days=MONTH_DAYS)
    name = f"month-scale{MONTH_SCALE:g}-from-{first.isoformat()}"
    path = OUT / f"{name}.duckdb"
    if path.exists():
        return path
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob(f"month-scale{MONTH_SCALE:g}-from-*"):
        old.unlink()
    events = OUT / f"{name}.jsonl"
    env = {**os.environ, "CALLPULSE_PII_KEY": PII_KEY}
    callpulse = str(Path(sys.executable).with_name("callpulse"))
    with console.status(f"simulating {MONTH_DAYS} days from {first} at scale {MONTH_SCALE:g} into {events} ..."):
        subprocess.run(
            [callpulse, "simulate", "--day", first.isoformat(), "--days", str(MONTH_DAYS)]
            + ["--scale", str(MONTH_SCALE), "--out", str(events)],
            check=True,
            env=env,
        )
    building = path.with_suffix(".building")
    with console.status(f"replaying {events} into {path} (once a day; later runs reuse it) ..."):
        subprocess.run([callpulse, "replay", str(events), "--db", str(building)], check=True, env=env)
    building.rename(path)
    events.unlink()
    return path


def _write_config(work: Path, db: Path, port: int) -> Path:
    path = work / "callpulse.toml"
    path.write_text(f'[pipeline]\ndb = "{db}"\n\n[exporter]\nhost = "127.0.0.1"\nport = {port}\n')
    return path


_OFFERED = re.compile(rf'^{OFFERED_METRIC}{{queue="([^"]*)"}} (\S+)$', re.MULTILINE)


def _metrics_offered(text: str) -> dict[str, int]:
    # A regular expression, not the full exposition parser: the scraper shares the machine's
    # two cores with the worker it measures, twenty times a second.
    return {q: int(float(v)) for q, v in _OFFERED.findall(text)}


def _feed_offered(body: str) -> dict[str, int]:
    return {q["queue"]: int(q["offered"]) for q in json.loads(body).get("queues", [])}


class Scraper:
    """Polls one endpoint every ``SCRAPE_EVERY_S`` on a thread of its own, keeping every answer."""

    def __init__(self, url: str, parse: Any) -> None:
        self.url = url
        self.parse = parse
        self.scrapes: list[Scrape] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def latest(self) -> dict[str, int] | None:
        return self.scrapes[-1].offered if self.scrapes else None

    def start(self) -> Scraper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # a worker that never came up: never started
            self._thread.join()

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    body = response.read().decode()
                self.scrapes.append(Scrape(time.time(), self.parse(body)))
            except (OSError, ValueError):
                self.errors += 1  # not up yet, or 503 before the first publication
            next_at += SCRAPE_EVERY_S
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def latencies(sends: list[tuple[str, float]], base: dict[str, int], scrapes: list[Scrape]) -> tuple[list[float], int]:
    """Each offered call's send → first scrape counting it (ms), and how many no scrape counted."""
    by_queue: dict[str, list[float]] = {}
    for queue, sent in sends:
        by_queue.setdefault(queue, []).append(sent)
    out: list[float] = []
    missing = 0
    for queue, times in by_queue.items():
        # The first scrape at which the queue's count reached base + k, for k = 1, 2, ...
        counted_at: list[float] = []
        for s in scrapes:
            n = s.offered.get(queue, 0) - base.get(queue, 0)
            while len(counted_at) < n:
                counted_at.append(s.at)
        for k, sent in enumerate(times):
            if k < len(counted_at):
                out.append(1000 * max(0.0, counted_at[k] - sent))
            else:
                missing += 1
    return out, missing


def summary(lat_ms: list[float], missing: int) -> dict[str, float]:
    lat_ms = sorted(lat_ms)
    q = percentiles(lat_ms)
    return {
        "n": len(lat_ms),
        "missing": missing,
        "p50": q[49],
        "p90": q[89],
        "p99": q[98],
        "max": lat_ms[-1] if lat_ms else float("nan"),
    }


def run_once(
    broker: KafkaBroker, db: Path, work: Path, rate: float, seconds: float
) -> tuple[dict[str, dict[str, float]], Memory]:
    """One worker on ``db``: warm-up, then ``seconds`` of producing at ``rate``, both endpoints
    scraped; and the worker's memory once every call is counted."""
    tag = uuid.uuid4().hex[:8]
    settings = KafkaSettings(bootstrap=broker.bootstrap, group=f"lat-{tag}", topic_prefix=f"lat-{tag}.")
    kafka.ensure_topics(settings, 3)
    port = free_port()
    cfg = _write_config(work, db, port)
    env = {**os.environ, "CALLPULSE_PII_KEY": PII_KEY}
    callpulse = str(Path(sys.executable).with_name("callpulse"))
    worker = ManagedProcess(
        [
            callpulse,
            "worker",
            "-c",
            str(cfg),
            "--bootstrap",
            settings.bootstrap,
            "--group",
            settings.group,
            "--topic-prefix",
            settings.topic_prefix,
        ],
        work / f"worker-{tag}.log",
        name="callpulse worker",
        env=env,
        stop_timeout=60,
    )
    base = f"http://127.0.0.1:{port}"
    metrics = Scraper(f"{base}/metrics", _metrics_offered)
    feed = Scraper(f"{base}/api/wallboard", _feed_offered)
    producer: subprocess.Popen[str] | None = None
    worker.start()
    try:
        worker.wait_ready(lambda: feed_ok(f"{base}/api/wallboard"), READY_TIMEOUT_S, "the worker serving its feed")
        metrics.start()
        feed.start()
        wait_until(lambda: metrics.latest() is not None, 60, "a first /metrics scrape")
        before = dict(metrics.latest() or {})
        producer = subprocess.Popen(
            [sys.executable, "-m", "devtools.bench.latency", settings.bootstrap, settings.topic_prefix, tag]
            + [str(rate), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert producer.stdin is not None and producer.stdout is not None
        warm: dict[str, int] = json.loads(producer.stdout.readline())
        # Baselines: both endpoints count every warm-up call (nothing else is produced meanwhile).
        m_base = {q: before.get(q, 0) + n for q, n in warm.items()}
        worker.wait_ready(lambda: _reached(metrics, m_base), READY_TIMEOUT_S, "/metrics counting the warm-up")
        worker.wait_ready(lambda: _reached(feed, warm), READY_TIMEOUT_S, "the feed counting the warm-up")
        f_base = dict(feed.latest() or {})
        producer.stdin.write("go\n")
        producer.stdin.flush()
        sends = [(q, float(t)) for q, t in json.loads(producer.stdout.readline())]
        producer.wait(timeout=60)
        # Until both endpoints count every measured call (or a generous while).
        m_end = Counter(m_base)
        m_end.update(q for q, _ in sends)
        f_end = Counter(f_base)
        f_end.update(q for q, _ in sends)
        for scraper, end in ((metrics, m_end), (feed, f_end)):
            with contextlib.suppress(TimeoutError):  # what is still not counted is reported as such
                wait_until(functools.partial(_reached, scraper, dict(end)), 60, "the last calls counted")
        memory = memory_from_status(Path(f"/proc/{worker.pid}/status").read_text())
    finally:
        metrics.stop()
        feed.stop()
        if producer is not None and producer.poll() is None:
            producer.kill()
        worker.stop()
    lat = {
        "metrics": summary(*latencies(sends, m_base, metrics.scrapes)),
        "feed": summary(*latencies(sends, f_base, feed.scrapes)),
    }
    return lat, memory


def feed_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _reached(scraper: Scraper, want: dict[str, int]) -> bool:
    got = scraper.latest()
    return got is not None and all(got.get(q, 0) >= n for q, n in want.items())


def run(rate: float = 1000.0, seconds: float = 60.0, dbs: tuple[str, ...] = ("empty", "month")) -> None:
    work = Path(tempfile.mkdtemp(prefix="callpulse-bench-latency-"))
    month = month_db() if "month" in dbs else None
    broker = KafkaBroker(heap="1g")
    results: list[tuple[str, dict[str, dict[str, float]], Memory]] = []
    speeds: list[tuple[str, Speed]] = []
    try:
        with console.status("starting a Kafka broker ..."):
            broker.start()
        for name in dbs:
            db = work / f"{name}.duckdb"
            db.unlink(missing_ok=True)
            if name == "month":
                assert month is not None
                with console.status(f"copying {month} ..."):
                    shutil.copyfile(month, db)
            with console.status(f"latency on the {name} database: {rate:,.0f} events/s for {seconds:.0f} s ..."):
                probe = SpeedProbe()
                try:
                    results.append((name, *run_once(broker, db, work, rate, seconds)))
                finally:
                    speeds.append((name, probe.stop()))
            db.unlink(missing_ok=True)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title=f"event → what users see, black box ({rate:,.0f} events/s, {seconds:.0f} s per run)")
    for col in ("db", "endpoint", "calls", "p50 ms", "p90 ms", "p99 ms", "max ms", "uncounted"):
        table.add_column(col, justify="right")
    for name, r, _ in results:
        for endpoint, label in (("metrics", "/metrics"), ("feed", "wallboard feed")):
            s = r[endpoint]
            table.add_row(
                name,
                label,
                f"{s['n']:,.0f}",
                *(f"{s[k]:,.0f}" for k in ("p50", "p90", "p99", "max")),
                f"{s['missing']:,.0f}",
            )
    console.print(table)
    if len(results) == 2:
        for endpoint in ("metrics", "feed"):
            ratio = results[1][1][endpoint]["p99"] / results[0][1][endpoint]["p99"]
            console.print(f"{endpoint}: {results[1][0]} p99 ÷ {results[0][0]} p99 = {ratio:.2f}")
    for name, _, mem in results:
        console.print(f"worker memory after the {name} run: RSS {mem.rss_mib:,.0f} MiB, peak {mem.peak_mib:,.0f} MiB")
    for name, speed in speeds:
        console.print(
            f"machine speed during the {name} run: {SPEED_WORK:,} Python additions took {speed.median_ms:.1f} ms "
            f"(median of {speed.samples} samples, 10th-90th percentile {speed.p10_ms:.1f}-{speed.p90_ms:.1f} ms; "
            "lower is faster)"
        )
    console.print("targets: p99 ≤ 1,000 ms on both databases, month p99 ≤ 1.2 × empty p99, RSS < 2 GB", style="dim")


# --------------------------------------------------------------------------- the producer process


def _live_records(tag: str) -> list[dict[str, Any]]:
    """The simulator's records in order, with call ids new to any database (times set when sent)."""
    records = []
    for r in simulate(SimConfig(seed=5, scale=MONTH_SCALE)):
        if "call_id" in r:
            r = {**r, "call_id": f"live-{tag}-{r['call_id']}"}
        records.append(r)
    return records


async def _send(
    records: list[dict[str, Any]], settings: KafkaSettings, rate: float
) -> tuple[list[tuple[str, float]], int]:
    """Send ``records`` at ``rate``, each stamped with its send time; the offered calls' (queue, send time)."""
    from aiokafka import AIOKafkaProducer

    topics = kafka.topic_names(settings)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=PRODUCER_LINGER_MS, acks="all")
    await producer.start()
    offered: list[tuple[str, float]] = []
    pending = []
    started = time.monotonic()
    try:
        for i, record in enumerate(records):
            ahead = started + i / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            now = time.time()
            record = {**record, "at": datetime.fromtimestamp(now, UTC).isoformat()}
            topic, key = kafka.route(record, topics)
            pending.append(await producer.send(topic, dumps(record).encode(), key=key))
            if record.get("type") == "call" and record.get("event") == "offered":
                offered.append((record["queue"], now))
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return offered, len(records)


def _produce(bootstrap: str, prefix: str, tag: str, rate: float, seconds: float) -> None:
    """Warm-up, print its offered calls per queue, wait for "go" on stdin, then the measured
    part; print the measured offered calls' (queue, send time)."""
    settings = KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix)
    records = _live_records(tag)
    n = int(rate * seconds)
    warm, measured = records[:WARMUP_EVENTS], records[WARMUP_EVENTS : WARMUP_EVENTS + n]
    offered, _ = asyncio.run(_send(warm, settings, rate))
    print(json.dumps(Counter(q for q, _ in offered)), flush=True)
    sys.stdin.readline()
    offered, _ = asyncio.run(_send(measured, settings, rate))
    print(json.dumps(offered), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--speed-probe":
        _probe(float(sys.argv[2]))
    else:
        _produce(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
