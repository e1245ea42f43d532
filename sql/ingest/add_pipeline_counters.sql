-- Adds one batch's record counts to pipeline_counters: $metrics, $sources, $reasons and $values are parallel lists.
INSERT INTO pipeline_counters AS p
SELECT unnest($metrics::VARCHAR[]), unnest($sources::VARCHAR[]), unnest($reasons::VARCHAR[]), unnest($values::BIGINT[])
ON CONFLICT (metric, source, reason) DO UPDATE SET value = p.value + excluded.value
