"""The latency benchmark's readings of the worker's memory and the machine's speed (devtools/bench/latency.py)."""

from __future__ import annotations

from devtools.bench.latency import SpeedProbe, memory_from_status, speed_of, speed_sample_ms
from devtools.procs import wait_until

# A /proc/<pid>/status of a Linux process, shortened: the fields around the two it reads.
STATUS = """Name:\tcallpulse
VmPeak:\t 3000000 kB
VmSize:\t 2900000 kB
VmHWM:\t 1572864 kB
VmRSS:\t  786432 kB
RssAnon:\t  700000 kB
Threads:\t25
"""


def test_the_worker_s_memory_is_its_resident_set_now_and_at_its_peak_in_mib() -> None:
    memory = memory_from_status(STATUS)
    assert memory.rss_mib == 768.0  # 786,432 kB / 1,024
    assert memory.peak_mib == 1536.0  # VmHWM, not VmPeak (virtual)


def test_a_run_s_speed_is_the_median_and_spread_of_its_samples() -> None:
    speed = speed_of([float(v) for v in range(1, 12)])  # 1 .. 11 ms
    assert (speed.median_ms, speed.samples) == (6.0, 11)
    assert (speed.p10_ms, speed.p90_ms) == (1.2, 10.8)  # statistics.quantiles, "exclusive"


def test_a_sample_is_the_time_its_work_took_in_ms() -> None:
    ticks = iter([10.0, 10.25])  # the clock's readings before and after the work, in seconds
    assert speed_sample_ms(1_000, clock=lambda: next(ticks)) == 250.0
    assert next(ticks, None) is None  # read twice, no more


def test_the_probe_process_samples_until_stopped() -> None:
    probe = SpeedProbe(every_s=0.01)
    try:
        wait_until(lambda: len(probe.samples) >= 3, 30, "three speed samples")
    finally:
        speed = probe.stop()
    assert speed.samples >= 3
    assert speed.p10_ms <= speed.median_ms <= speed.p90_ms
    assert probe.exit_code == 0  # it ended because its stdin closed, not killed
