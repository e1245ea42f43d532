-- Returns the additive agent_interval sums of intervals starting in [$lo, $hi); with $queue, only agents who answered a call of that queue then.
SELECT a.agent_id, a.interval_start, a.handled, a.handle_s, a.ready_s, a.busy_s, a.wrap_s,
       a.not_ready_s, a.qa_count, a.qa_sum
FROM agent_interval a
WHERE a.interval_start >= $lo AND a.interval_start < $hi
  AND (CAST($queue AS VARCHAR) IS NULL OR a.agent_id IN (
        SELECT agent_id FROM call_state
        WHERE queue = $queue AND offered_at >= $lo AND offered_at < $hi AND agent_id IS NOT NULL))
ORDER BY a.agent_id, a.interval_start
