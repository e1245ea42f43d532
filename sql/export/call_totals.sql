-- Returns per known queue the running totals of stored calls (they only grow as events arrive): offered, answered, abandoned, answered within the queue's service-level threshold, and the sum of answered waits in seconds.
SELECT s.queue,
       count(c.offered_at) AS offered,
       count(c.answered_at) AS answered,
       count(c.abandoned_at) AS abandoned,
       count(*) FILTER (WHERE cp_seconds_between(c.offered_at, c.answered_at) <= s.sl_threshold_s) AS answered_in_sl,
       coalesce(sum(greatest(cp_seconds_between(c.offered_at, c.answered_at), 0)), 0) AS answer_wait_s
FROM queue_settings s
LEFT JOIN call_state c ON c.queue = s.queue AND c.offered_at IS NOT NULL
GROUP BY s.queue
ORDER BY s.queue
