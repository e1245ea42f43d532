-- Returns the calls waiting now (as of the watermark; waits beyond orphan_after are closed), longest wait first: queue, caller_masked, offered_at, wait_s. $since (NULL: none): no call offered before it can be waiting (the watermark minus the longest orphan_after), a value the scan skips the history by.
SELECT c.queue, c.caller_masked, c.offered_at, cp_seconds_between(c.offered_at, p.watermark) AS wait_s
FROM calls c
CROSS JOIN pipeline_state p
JOIN queue_settings s ON s.queue = c.queue
WHERE c.outcome = 'waiting'
  AND c.offered_at >= p.watermark - to_seconds(s.orphan_after_s)
  AND ($since::TIMESTAMPTZ IS NULL OR c.offered_at >= $since::TIMESTAMPTZ)
ORDER BY wait_s DESC, c.queue, c.call_id
LIMIT $limit
