"""Benchmarks (`make bench`): throughput reported as a ratio to a baseline run in the same process."""

import statistics


def percentiles(values: list[float]) -> list[float]:
    """The 99 cut points of ``values`` (index k: the (k+1)th percentile); NaN for fewer than three."""
    return statistics.quantiles(values, n=100) if len(values) > 2 else [float("nan")] * 99
