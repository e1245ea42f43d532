-- Returns one row per call offered in [$lo, $hi) (optionally one $queue): queue, offered_at, outcome, wait_s, handle_s, agent_id; no caller columns.
SELECT queue, offered_at, outcome, wait_s, handle_s, agent_id, short_abandon
FROM calls
WHERE offered_at >= $lo AND offered_at < $hi
  AND (CAST($queue AS VARCHAR) IS NULL OR queue = $queue)
ORDER BY offered_at, queue
