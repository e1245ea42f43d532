"""Reading Prometheus text exposition the way a scraper does (prometheus_client's parser),
so tests compare values, not text."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

Labels = tuple[tuple[str, str], ...]


def fetch(url: str, timeout: float = 5.0) -> tuple[str, str]:
    """GET ``url`` (a ``/metrics`` endpoint): the body and its Content-Type."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode(), str(response.headers["Content-Type"])


def families(text: str) -> set[str]:
    """The metric family names in ``text`` (counters without ``_total``)."""
    return {fam.name for fam in text_string_to_metric_families(text)}


def all_samples(text: str) -> list[Sample]:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def series(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample, keyed by its name and its sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in all_samples(text)}


def samples(text: str, name: str) -> dict[Labels, float]:
    """The samples named ``name`` (with ``_total``, ``_bucket`` … as exposed), by sorted labels."""
    return {labels: v for (n, labels), v in series(text).items() if n == name}


def value(text: str, name: str, **labels: str) -> float | None:
    """The one sample ``name{labels}``, or None if there is none."""
    return series(text).get((name, tuple(sorted(labels.items()))))
