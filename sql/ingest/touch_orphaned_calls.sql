-- Marks as touched the intervals of calls that became orphans (waiting past orphan_after) between the old and the new watermark.
INSERT INTO touched_q
SELECT DISTINCT c.queue, cp_bucket(c.offered_at, $iv) AS interval_start
FROM call_state c JOIN queue_settings s USING (queue)
WHERE c.answered_at IS NULL AND c.abandoned_at IS NULL AND c.exited_at IS NULL
  AND c.offered_at + to_seconds(s.orphan_after_s) >= $old_wm
  AND c.offered_at + to_seconds(s.orphan_after_s) < $new_wm
