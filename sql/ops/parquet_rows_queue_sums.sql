-- Creates parquet_rows: the additive queue_interval sums (with interval_s and the queue's sl_formula, which reports need) of intervals closed by $frontier, starting since $lo (NULL: ever), with key, content hash and site-local day.
CREATE OR REPLACE TEMP TABLE parquet_rows AS
SELECT q.*, p.interval_s, coalesce(s.sl_formula, 'negative') AS sl_formula,
       q.queue || chr(31) || CAST(epoch_us(q.interval_start) AS VARCHAR) AS _key,
       hash(q, p.interval_s, s.sl_formula) AS _hash,
       strftime(timezone(p.timezone, q.interval_start), '%Y-%m-%d') AS _day,
       q.interval_start AS _time
FROM queue_interval q
LEFT JOIN queue_settings s USING (queue)
CROSS JOIN pipeline_state p
WHERE (CAST($lo AS TIMESTAMPTZ) IS NULL OR q.interval_start >= $lo)
  AND q.interval_start + to_seconds(p.interval_s) <= $frontier;
