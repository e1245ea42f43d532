-- Returns per queue and bucket bound in $bounds (seconds) how many answered calls waited at most that long (cumulative histogram buckets; the +Inf bucket is the answered total of export/call_totals).
WITH w AS (
    SELECT queue, greatest(cp_seconds_between(offered_at, answered_at), 0) AS wait_s
    FROM call_state WHERE answered_at IS NOT NULL AND offered_at IS NOT NULL
)
SELECT w.queue, b.le, count(*) FILTER (WHERE w.wait_s <= b.le) AS calls
FROM w CROSS JOIN (SELECT unnest($bounds::DOUBLE[]) AS le) b
GROUP BY ALL
ORDER BY ALL
