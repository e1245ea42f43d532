-- Returns per queue and interval of the calls offered in [$lo, $hi) (optionally one $queue) that are not short abandons: abandoned (how many hung up) and wait_s (the seconds they all waited, still waiting ones up to the watermark), the patience estimate's inputs for the interval's agents needed.
SELECT c.queue, c.interval_start,
       count(*) FILTER (WHERE c.outcome = 'abandoned') AS abandoned,
       coalesce(sum(cp_us(coalesce(c.wait_s, cp_seconds_between(c.offered_at, p.watermark)))), 0) / 1e6 AS wait_s
FROM calls c
CROSS JOIN pipeline_state p
WHERE c.offered_at >= $lo AND c.offered_at < $hi AND NOT coalesce(c.short_abandon, false)
  AND (CAST($queue AS VARCHAR) IS NULL OR c.queue = $queue)
GROUP BY ALL
ORDER BY ALL
