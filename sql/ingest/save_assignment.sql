-- Replaces the worker's claim on Kafka partitions: $sources and $partitions are parallel lists (empty: none held), $generation the consumer group's.
DELETE FROM worker_partitions;
INSERT INTO worker_partitions
SELECT $worker, unnest($sources::VARCHAR[]), unnest($partitions::INTEGER[]), $generation, $assigned_at
