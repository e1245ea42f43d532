-- Returns the additive queue_interval sums (and the queue's sl_formula and interval_s) of intervals starting in [$lo, $hi), optionally one $queue.
SELECT q.queue, q.interval_start, p.interval_s,
       q.offered, q.answered, q.abandoned, q.short_abandoned, q.exited, q.waiting,
       q.answered_in_sl, q.abandoned_in_sl, q.answer_wait_s, q.handled, q.handle_s,
       q.transferred, q.max_wait_s, q.repeat_eligible, q.repeated,
       coalesce(s.sl_formula, 'negative') AS sl_formula
FROM queue_interval q
LEFT JOIN queue_settings s USING (queue)
CROSS JOIN pipeline_state p
WHERE q.interval_start >= $lo AND q.interval_start < $hi
  AND (CAST($queue AS VARCHAR) IS NULL OR q.queue = $queue)
ORDER BY q.queue, q.interval_start
