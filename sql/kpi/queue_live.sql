-- Returns per known queue the calls waiting now and the oldest wait in seconds, as of the watermark (waits beyond orphan_after are closed, not waiting).
SELECT s.queue,
       count(c.call_id) AS calls_waiting,
       max(cp_seconds_between(c.offered_at, p.watermark)) AS oldest_wait_s
FROM queue_settings s
CROSS JOIN pipeline_state p
LEFT JOIN calls c ON c.queue = s.queue AND c.outcome = 'waiting'
                 AND c.offered_at >= p.watermark - to_seconds(s.orphan_after_s)
GROUP BY s.queue
ORDER BY s.queue
