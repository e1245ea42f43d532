"""Data in: file and Kafka sources, adapters for other systems' formats, the log tailer and the Kafka worker."""
