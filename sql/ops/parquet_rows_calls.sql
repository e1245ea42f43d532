-- Creates parquet_rows: the calls that are over by $frontier (answered and ended, abandoned, exited or orphaned), offered since $lo (NULL: ever), with key, content hash and site-local day.
CREATE OR REPLACE TEMP TABLE parquet_rows AS
SELECT c.*,
       c.call_id || chr(31) || c.queue AS _key,
       hash(c) AS _hash,
       strftime(timezone((SELECT timezone FROM pipeline_state), c.offered_at), '%Y-%m-%d') AS _day,
       c.offered_at AS _time
FROM calls c
WHERE (CAST($lo AS TIMESTAMPTZ) IS NULL OR c.offered_at >= $lo)
  AND CASE c.outcome WHEN 'answered' THEN c.ended_at <= $frontier
                     WHEN 'abandoned' THEN c.abandoned_at <= $frontier
                     WHEN 'exited' THEN c.exited_at <= $frontier
                     ELSE false END;
