-- Creates parquet_rows: the breaches closed by $frontier, opened since $lo (NULL: ever), with key, content hash, site-local day and _deleted false.
CREATE OR REPLACE TEMP TABLE parquet_rows AS
SELECT b.*,
       b.queue || chr(31) || b.kpi || chr(31) || b."window" || chr(31) || CAST(epoch_us(b.opened_at) AS VARCHAR) AS _key,
       hash(b) AS _hash,
       strftime(timezone((SELECT timezone FROM pipeline_state), b.opened_at), '%Y-%m-%d') AS _day,
       b.opened_at AS _time,
       false AS _deleted
FROM breaches b
WHERE (CAST($lo AS TIMESTAMPTZ) IS NULL OR b.opened_at >= $lo)
  AND b.closed_at IS NOT NULL AND b.closed_at <= $frontier;
