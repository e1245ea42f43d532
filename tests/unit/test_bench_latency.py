"""The latency benchmark's reading of the worker's memory (devtools/bench/latency.py)."""

from __future__ import annotations

from devtools.bench.latency import memory_from_status

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
