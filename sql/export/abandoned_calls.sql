-- Returns the latest abandoned calls (abandoned within $lookback_s seconds before the watermark), newest first: queue, caller_masked, abandoned_at, wait_s.
SELECT c.queue, c.caller_masked, c.abandoned_at, c.wait_s
FROM calls c
CROSS JOIN pipeline_state p
WHERE c.outcome = 'abandoned'
  AND c.abandoned_at >= p.watermark - to_seconds($lookback_s)
ORDER BY c.abandoned_at DESC, c.queue, c.call_id
LIMIT $limit
