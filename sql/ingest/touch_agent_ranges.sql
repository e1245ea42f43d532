-- Inserts into touched_a every interval of each agent in new_agents from its earliest new event up to the watermark.
-- Intervals before the earliest new event keep their values: the state that was current
-- then still lasts until at least that event, so none of their segments change.
INSERT INTO touched_a
WITH b AS (SELECT agent_id, min(ts) AS lo FROM new_agents GROUP BY agent_id)
SELECT agent_id, unnest(cp_buckets(lo, $wm, $iv)) AS interval_start
FROM b
