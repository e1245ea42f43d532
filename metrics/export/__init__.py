"""Prometheus export: metric names, the collector, the exporter and the generated alert rules."""
