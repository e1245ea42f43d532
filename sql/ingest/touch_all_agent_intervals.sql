-- Marks every agent interval the stored agent events (from each agent's first one up to the
-- watermark) and QA evaluations cover: the agent side of a full recompute.
INSERT INTO touched_a
SELECT agent_id, unnest(cp_buckets(min(ts), $wm, $iv)) AS interval_start
FROM agent_events GROUP BY agent_id;
INSERT INTO touched_a SELECT agent_id, cp_bucket(ts, $iv) FROM qa_evals;
