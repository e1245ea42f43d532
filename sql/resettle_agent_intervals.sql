-- The interval length changed: empties agent_interval and marks every agent interval that the
-- kept agent events and QA evaluations cover (older agent history can't be re-bucketed).
DELETE FROM agent_interval;
INSERT INTO touched_a
SELECT agent_id, to_timestamp(unnest(range(
    CAST(floor(epoch(min(ts)) / $iv) * $iv AS BIGINT),
    CAST(floor(epoch($wm) / $iv) * $iv AS BIGINT) + 1,
    CAST($iv AS BIGINT)))) AS interval_start
FROM agent_events GROUP BY agent_id;
INSERT INTO touched_a SELECT agent_id, cp_bucket(ts, $iv) FROM qa_evals;
