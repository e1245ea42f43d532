-- Replaces the worker's claim on Kafka partitions (the sources and partitions lists are parallel; empty: none held), with the consumer group's generation.
DELETE FROM worker_partitions;
INSERT INTO worker_partitions
SELECT $worker, unnest($sources::VARCHAR[]), unnest($partitions::INTEGER[]), $generation, $assigned_at
