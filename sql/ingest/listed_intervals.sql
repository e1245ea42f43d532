-- Returns how many (queue | agent, interval) aggregates batches listed for a recompute that has not run yet (touched_q, touched_a: a pipeline stopped between a batch and its recompute).
SELECT (SELECT count(*) FROM (SELECT DISTINCT queue, interval_start FROM touched_q))
     + (SELECT count(*) FROM (SELECT DISTINCT agent_id, interval_start FROM touched_a)) AS listed
