-- Returns per queue and interval starting in [$lo, $hi) (optionally one $queue) agents_staffed: the mean number of agents logged in (any state but logout) serving the queue, their logged-in seconds in the interval ÷ the part of it up to the watermark.
WITH p AS (
    SELECT interval_s, watermark FROM pipeline_state
), ev AS (
    -- each agent's state (and queues) when the period opens, and every change inside it
    SELECT agent_id, ts, state, queues FROM agent_events_from($lo, $hi)
), seg AS (
    SELECT agent_id, state, ts AS started_at,
           coalesce(lead(ts) OVER (PARTITION BY agent_id ORDER BY ts, state), (SELECT watermark FROM p)) AS ended_at,
           last_value(queues IGNORE NULLS) OVER (PARTITION BY agent_id ORDER BY ts, state
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS queues
    FROM ev
), served AS (
    -- unnest in the select list, not a lateral join (as sql/export/queue_occupancy.sql)
    SELECT agent_id, started_at, ended_at, unnest(coalesce(queues, []::VARCHAR[])) AS queue
    FROM seg
    WHERE state <> 'logout' AND ended_at > $lo AND started_at < $hi
), buckets AS (
    SELECT unnest(cp_buckets($lo, least($hi, watermark), interval_s)) AS interval_start, interval_s, watermark FROM p
), clipped AS (
    SELECT s.queue, b.interval_start,
           cp_seconds_between(greatest(s.started_at, b.interval_start),
                              least(s.ended_at, b.interval_start + to_seconds(b.interval_s), b.watermark)) AS seconds,
           cp_seconds_between(b.interval_start, least(b.interval_start + to_seconds(b.interval_s), b.watermark)) AS span_s
    FROM served s
    JOIN buckets b ON s.started_at < b.interval_start + to_seconds(b.interval_s) AND s.ended_at > b.interval_start
    WHERE b.interval_start >= $lo AND b.interval_start < $hi
      AND (CAST($queue AS VARCHAR) IS NULL OR s.queue = $queue)
)
SELECT queue, interval_start, cp_ratio(sum(cp_us(seconds)) / 1e6, max(span_s)) AS agents_staffed
FROM clipped
WHERE seconds > 0
GROUP BY ALL
ORDER BY ALL
