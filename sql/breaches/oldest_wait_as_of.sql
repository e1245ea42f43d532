-- Returns, for every evaluation point m (epoch seconds $first, $first + $step, ..., up to $last) and every queue with a call waiting at m, the oldest wait in seconds at m and the queue's target (calls waiting longer than orphan_after count as exited, as in kpi/queue_live).
WITH points AS (
    SELECT to_timestamp(p) AS m FROM unnest(range($first, $last + 1, $step)) AS t(p)
), c AS (
    SELECT c.queue, c.offered_at,
           coalesce(least(c.answered_at, c.abandoned_at, c.exited_at), 'infinity'::TIMESTAMPTZ) AS left_at,
           s.orphan_after_s
    FROM call_state c JOIN queue_settings s USING (queue)
    WHERE c.offered_at IS NOT NULL
      AND c.offered_at <= to_timestamp($last)
      AND coalesce(least(c.answered_at, c.abandoned_at, c.exited_at), 'infinity'::TIMESTAMPTZ) > to_timestamp($first)
      AND c.offered_at + to_seconds(s.orphan_after_s) >= to_timestamp($first)
      -- the same bound with the longest orphan_after ($orphan_s, NULL: unknown) as a value,
      -- so the scan skips the stored history instead of testing every call in it
      AND ($orphan_s::DOUBLE IS NULL OR c.offered_at >= to_timestamp($first - $orphan_s::DOUBLE))
)
SELECT p.m, c.queue, max(cp_seconds_between(c.offered_at, p.m)) AS oldest_wait_s,
       any_value(s.target_oldest_wait_s) AS target_oldest_wait_s
FROM points p
JOIN c ON c.offered_at <= p.m AND c.left_at > p.m AND c.offered_at >= p.m - to_seconds(c.orphan_after_s)
JOIN queue_settings s ON s.queue = c.queue
GROUP BY p.m, c.queue
ORDER BY p.m, c.queue
