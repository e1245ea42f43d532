-- Empties call state and aggregates and marks every stored call as touched: with
-- touch_all_agent_intervals, a full recompute from the stored events.
DELETE FROM call_state;
DELETE FROM queue_interval;
DELETE FROM agent_interval;
INSERT INTO touched_calls SELECT DISTINCT call_id, queue FROM call_events;
