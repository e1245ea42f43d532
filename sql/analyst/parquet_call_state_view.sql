-- Creates the view call_state (call_id, queue, agent_id, offered_at) from the Parquet calls, which the agents report reads to pick a queue's agents.
CREATE OR REPLACE VIEW call_state AS SELECT call_id, queue, agent_id, offered_at FROM calls;
