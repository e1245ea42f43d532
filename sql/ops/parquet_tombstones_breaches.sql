-- Adds to parquet_rows a deletion row (key columns, _deleted true, hash 0) for each breach exported before and since the lookback that is no longer a closed breach: breach evaluation re-decided it after a late event.
INSERT INTO parquet_rows (queue, kpi, "window", opened_at, _key, _hash, _day, _time, _deleted)
SELECT k[1], k[2], k[3], make_timestamptz(CAST(k[4] AS BIGINT)), m.key, 0,
       strftime(timezone((SELECT timezone FROM pipeline_state), make_timestamptz(CAST(k[4] AS BIGINT))), '%Y-%m-%d'),
       m.row_time, true
FROM (SELECT *, string_split(key, chr(31)) AS k FROM parquet_marks) m
WHERE m.tbl = 'breaches' AND m.row_hash <> 0
  AND (CAST($lo AS TIMESTAMPTZ) IS NULL OR m.row_time >= $lo)
  AND NOT EXISTS (SELECT 1 FROM parquet_rows r WHERE r._key = m.key);
