-- Returns each agent in touched_a once: the agents whose intervals the recompute rebuilds.
SELECT DISTINCT agent_id FROM touched_a
