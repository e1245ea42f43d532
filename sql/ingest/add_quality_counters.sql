-- Adds to the quality counters and histogram buckets the quality records this batch made countable (the batch's new ones, new_quality, and those waiting in quality_pending for a call the batch touched) whose call's offer is stored: each in the first queue its call was offered to, poor by that queue's thresholds now in force; the rest wait in quality_pending. The mos_bounds and jitter_bounds_s parameters are the buckets' bounds.
CREATE OR REPLACE TEMP TABLE _quality_cand AS
SELECT call_id, leg, direction, mos, jitter_ms, loss_pct FROM new_quality
UNION ALL
SELECT p.* FROM quality_pending p SEMI JOIN touched_calls t USING (call_id);
CREATE OR REPLACE TEMP TABLE _quality_new AS
WITH firsts AS (
    SELECT call_id, min({'t': offered_at, 'queue': queue}).queue AS queue
    FROM call_state
    WHERE offered_at IS NOT NULL AND call_id IN (SELECT call_id FROM _quality_cand)
    GROUP BY call_id
)
SELECT c.call_id, c.leg, c.direction, f.queue, c.mos, c.jitter_ms / 1e3 AS jitter_s,
       coalesce(c.mos < s.poor_mos, false) OR coalesce(c.loss_pct > s.poor_loss_pct, false)
           OR coalesce(c.jitter_ms > s.poor_jitter_ms, false) AS poor
FROM _quality_cand c JOIN firsts f USING (call_id) JOIN queue_settings s ON s.queue = f.queue;
INSERT INTO quality_counters AS q
SELECT queue, count(*), count(*) FILTER (WHERE poor), count(mos), coalesce(sum(cp_us(mos)) / 1e6, 0),
       count(jitter_s), coalesce(sum(cp_us(jitter_s)) / 1e6, 0)
FROM _quality_new GROUP BY queue
ON CONFLICT (queue) DO UPDATE SET
    reports = q.reports + excluded.reports, poor = q.poor + excluded.poor,
    mos_count = q.mos_count + excluded.mos_count, mos_sum = q.mos_sum + excluded.mos_sum,
    jitter_count = q.jitter_count + excluded.jitter_count, jitter_sum_s = q.jitter_sum_s + excluded.jitter_sum_s;
INSERT INTO quality_buckets AS b
SELECT n.queue, 'mos', le, count(*) FROM _quality_new n, unnest($mos_bounds::DOUBLE[]) AS t(le)
WHERE n.mos <= le GROUP BY ALL
UNION ALL
SELECT n.queue, 'jitter_s', le, count(*) FROM _quality_new n, unnest($jitter_bounds_s::DOUBLE[]) AS t(le)
WHERE n.jitter_s <= le GROUP BY ALL
ON CONFLICT (queue, measure, le) DO UPDATE SET reports = b.reports + excluded.reports;
DELETE FROM quality_pending AS p USING _quality_new n
WHERE p.call_id = n.call_id AND p.leg = n.leg AND p.direction = n.direction;
INSERT INTO quality_pending
SELECT c.* FROM new_quality c ANTI JOIN _quality_new n USING (call_id, leg, direction)
