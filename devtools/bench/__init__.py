"""Benchmarks (`make bench`): throughput reported as a ratio to a baseline run in the same process."""
