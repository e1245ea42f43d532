-- Creates the session's scratch tables that list what a batch touched (temporary: never stored).
CREATE TEMP TABLE IF NOT EXISTS touched_calls (call_id VARCHAR, queue VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS touched_q (queue VARCHAR, interval_start TIMESTAMPTZ);
CREATE TEMP TABLE IF NOT EXISTS touched_a (agent_id VARCHAR, interval_start TIMESTAMPTZ);
