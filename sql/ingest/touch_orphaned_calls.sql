-- Marks as touched the intervals of calls that became orphans (waiting past orphan_after) between the old and the new watermark.
INSERT INTO touched_q
SELECT DISTINCT c.queue, cp_bucket(c.offered_at, $iv) AS interval_start
FROM call_state c JOIN queue_settings s USING (queue)
WHERE c.answered_at IS NULL AND c.abandoned_at IS NULL AND c.exited_at IS NULL
  AND c.offered_at + to_seconds(s.orphan_after_s) >= $old_wm
  AND c.offered_at + to_seconds(s.orphan_after_s) < $new_wm
  -- the same bounds with the longest and the shortest orphan_after as values, so the scan
  -- reads the calls offered in that span instead of testing the whole history
  AND c.offered_at >= $old_wm - to_seconds($max_orphan_s) AND c.offered_at < $new_wm - to_seconds($min_orphan_s)
