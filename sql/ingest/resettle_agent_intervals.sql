-- The interval length changed: empties agent_interval, to be recomputed (with
-- touch_all_agent_intervals) from the agent events retention kept.
DELETE FROM agent_interval;
