-- Creates parquet_rows: the additive agent_interval sums of intervals closed by $frontier, starting since $lo (NULL: ever), with key, content hash and site-local day.
CREATE OR REPLACE TEMP TABLE parquet_rows AS
SELECT a.*,
       a.agent_id || chr(31) || CAST(epoch_us(a.interval_start) AS VARCHAR) AS _key,
       hash(a) AS _hash,
       strftime(timezone(p.timezone, a.interval_start), '%Y-%m-%d') AS _day,
       a.interval_start AS _time
FROM agent_interval a
CROSS JOIN pipeline_state p
WHERE (CAST($lo AS TIMESTAMPTZ) IS NULL OR a.interval_start >= $lo)
  AND a.interval_start + to_seconds(p.interval_s) <= $frontier;
