-- Adds the counter rows a queue lacks (a new queue, a new threshold, a database from before the counters): queue_counters from the stored calls, and a wait bucket for every bound in the bounds parameter, in use or already stored; a new bucket is recounted from the stored calls but kept between its neighbours, so the buckets stay cumulative.
INSERT INTO queue_counters
SELECT s.queue,
       count(c.offered_at),
       count(c.answered_at),
       count(c.abandoned_at),
       count(*) FILTER (WHERE cp_seconds_between(c.offered_at, c.answered_at) <= s.sl_threshold_s),
       coalesce(sum(greatest(epoch_us(c.answered_at) - epoch_us(c.offered_at), 0)), 0)
FROM queue_settings s
LEFT JOIN call_state c ON c.queue = s.queue AND c.offered_at IS NOT NULL
WHERE s.queue NOT IN (SELECT queue FROM queue_counters)
GROUP BY s.queue;
INSERT INTO queue_wait_buckets
WITH bounds AS (
    SELECT unnest($bounds::DOUBLE[]) AS le
    UNION SELECT sl_threshold_s FROM queue_settings WHERE sl_threshold_s > 0
    UNION SELECT le FROM queue_wait_buckets
), missing AS (
    SELECT q.queue, b.le FROM queue_counters q CROSS JOIN bounds b
    ANTI JOIN queue_wait_buckets w ON w.queue = q.queue AND w.le = b.le
), recount AS (
    SELECT m.queue, m.le,
           count(c.answered_at) FILTER (WHERE greatest(cp_seconds_between(c.offered_at, c.answered_at), 0) <= m.le) AS calls
    FROM missing m
    LEFT JOIN call_state c ON c.queue = m.queue AND c.offered_at IS NOT NULL AND c.answered_at IS NOT NULL
    GROUP BY ALL
)
SELECT r.queue, r.le,
       greatest(
           (SELECT coalesce(max(w.calls), 0) FROM queue_wait_buckets w WHERE w.queue = r.queue AND w.le < r.le),
           least(r.calls, coalesce(
               (SELECT min(w.calls) FROM queue_wait_buckets w WHERE w.queue = r.queue AND w.le > r.le),
               (SELECT q.answered FROM queue_counters q WHERE q.queue = r.queue)))
       ) AS calls
FROM recount r
