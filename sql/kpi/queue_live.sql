-- Returns per known queue the calls waiting now and the oldest wait in seconds, as of the watermark (waits beyond orphan_after are closed, not waiting).
-- From call_state, not the calls view: the publisher runs this after every batch, and
-- binding the view costs more than the query. Waiting is the view's outcome 'waiting': no
-- answer, abandon or exit, and offered no longer than orphan_after before the watermark.
SELECT s.queue,
       count(c.call_id) AS calls_waiting,
       max(cp_seconds_between(c.offered_at, p.watermark)) AS oldest_wait_s
FROM queue_settings s
CROSS JOIN pipeline_state p
LEFT JOIN call_state c ON c.queue = s.queue
                      AND c.answered_at IS NULL AND c.abandoned_at IS NULL AND c.exited_at IS NULL
                      AND c.offered_at >= p.watermark - to_seconds(s.orphan_after_s)
GROUP BY s.queue
ORDER BY s.queue
