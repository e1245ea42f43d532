-- Empties call state and aggregates and marks every call, agent interval and QA interval as touched: a full recompute from the stored events.
DELETE FROM call_state;
DELETE FROM queue_interval;
DELETE FROM agent_interval;
INSERT INTO touched_calls SELECT DISTINCT call_id, queue FROM call_events;
INSERT INTO touched_a
SELECT agent_id, to_timestamp(unnest(range(
    CAST(floor(epoch(min(ts)) / $iv) * $iv AS BIGINT),
    CAST(floor(epoch($wm) / $iv) * $iv AS BIGINT) + 1,
    CAST($iv AS BIGINT)))) AS interval_start
FROM agent_events GROUP BY agent_id;
INSERT INTO touched_a SELECT agent_id, cp_bucket(ts, $iv) FROM qa_evals;
