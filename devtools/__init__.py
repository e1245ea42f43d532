"""Development helpers shared by the tests, the benchmark (``python -m devtools.bench``) and
``scripts/``: real services (a Kafka broker, child processes) started and stopped on demand.
Not part of the installed package; nothing here imports from ``tests``."""
