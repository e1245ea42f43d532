-- Returns the stored pipeline counters: metric, source (kind), reason ('' but for dead letters), value.
SELECT metric, source, reason, value FROM pipeline_counters ORDER BY ALL
