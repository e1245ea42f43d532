-- Stores counts a process keeps itself for one metric (the sources and values lists are parallel; reason ''), never lowering a stored one.
INSERT INTO pipeline_counters AS p
SELECT $metric, unnest($sources::VARCHAR[]), '', unnest($values::BIGINT[])
ON CONFLICT (metric, source, reason) DO UPDATE SET value = greatest(p.value, excluded.value)
