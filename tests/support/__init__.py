"""Helpers the tests share: the command line (``cli``), Prometheus text and tools
(``scrape``, ``prometheus``), the shared material beside the checkout (``shared``).
Services that scripts/ and the benchmark start too live in ``devtools``."""
