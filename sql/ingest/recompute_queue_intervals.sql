-- Replaces the queue_interval rows of the intervals in touched_q with fresh aggregates.
DELETE FROM queue_interval USING touched_q t
WHERE queue_interval.queue = t.queue AND queue_interval.interval_start = t.interval_start;
INSERT INTO queue_interval
SELECT a.* FROM queue_aggregates($lo, $hi, $iv) a SEMI JOIN touched_q t USING (queue, interval_start);
