-- Returns the media quality of each call first offered in [$lo, $hi) (optionally in one $queue): one row per call with its queue, trunk and worst values, and whether it was poor (the call_quality view's columns).
SELECT call_id, queue, agent_id, offered_at, trunk, reports, mos, jitter_ms, loss_pct, rtt_ms,
       poor_mos, poor_network, poor
FROM call_quality_between($lo, $hi)
WHERE (CAST($queue AS VARCHAR) IS NULL OR queue = $queue)
ORDER BY queue, offered_at, call_id
