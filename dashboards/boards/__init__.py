"""The Grafana boards, one pure builder per module: ``build(config) -> dict``."""
