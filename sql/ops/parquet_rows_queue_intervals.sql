-- Creates parquet_rows: the kpi_queue_interval rows of intervals closed by $frontier, starting since $lo (NULL: ever), with key, content hash and site-local day.
CREATE OR REPLACE TEMP TABLE parquet_rows AS
SELECT k.*,
       k.queue || chr(31) || CAST(epoch_us(k.interval_start) AS VARCHAR) AS _key,
       hash(k) AS _hash,
       strftime(timezone((SELECT timezone FROM pipeline_state), k.interval_start), '%Y-%m-%d') AS _day,
       k.interval_start AS _time
FROM kpi_queue_interval k
WHERE (CAST($lo AS TIMESTAMPTZ) IS NULL OR k.interval_start >= $lo)
  AND k.interval_start + to_seconds(k.interval_s) <= $frontier;
