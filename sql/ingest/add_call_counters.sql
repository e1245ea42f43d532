-- Adds to the queue counters and wait buckets what this batch decided about its calls: offers, answers and abandons first known now (fresh_state against batch_known, each call once; an answer or abandon counts once the call's offer is known too), and whether an answer was within the queue's threshold now in force.
CREATE OR REPLACE TEMP TABLE _decided AS
SELECT f.queue,
       f.offered_at IS NOT NULL AND k.offered_at IS NULL AS offered,
       f.offered_at IS NOT NULL AND f.answered_at IS NOT NULL
           AND (k.offered_at IS NULL OR k.answered_at IS NULL) AS answered,
       f.offered_at IS NOT NULL AND f.abandoned_at IS NOT NULL
           AND (k.offered_at IS NULL OR k.abandoned_at IS NULL) AS abandoned,
       greatest(epoch_us(f.answered_at) - epoch_us(f.offered_at), 0) AS wait_us
FROM fresh_state f
LEFT JOIN batch_known k USING (call_id, queue);
UPDATE queue_counters AS q
SET offered = q.offered + d.offered,
    answered = q.answered + d.answered,
    abandoned = q.abandoned + d.abandoned,
    answered_in_sl = q.answered_in_sl + d.answered_in_sl,
    answer_wait_us = q.answer_wait_us + d.answer_wait_us
FROM (
    SELECT d.queue,
           count(*) FILTER (WHERE d.offered) AS offered,
           count(*) FILTER (WHERE d.answered) AS answered,
           count(*) FILTER (WHERE d.abandoned) AS abandoned,
           count(*) FILTER (WHERE d.answered AND d.wait_us / 1e6 <= s.sl_threshold_s) AS answered_in_sl,
           coalesce(sum(d.wait_us) FILTER (WHERE d.answered), 0) AS answer_wait_us
    FROM _decided d JOIN queue_settings s USING (queue)
    WHERE d.offered OR d.answered OR d.abandoned
    GROUP BY d.queue
) d
WHERE q.queue = d.queue;
UPDATE queue_wait_buckets AS w
SET calls = w.calls + d.calls
FROM (
    SELECT b.queue, b.le, count(*) AS calls
    FROM _decided d JOIN queue_wait_buckets b ON b.queue = d.queue AND d.wait_us / 1e6 <= b.le
    WHERE d.answered
    GROUP BY ALL
) d
WHERE w.queue = d.queue AND w.le = d.le
