-- Rebuilds agent_last from agent_events (at open, and in a rebuild).
-- A database from before agent_last held reason and queues lacks those columns.
ALTER TABLE agent_last ADD COLUMN IF NOT EXISTS reason VARCHAR;
ALTER TABLE agent_last ADD COLUMN IF NOT EXISTS queues VARCHAR[];
ALTER TABLE agent_last ADD COLUMN IF NOT EXISTS queues_ts TIMESTAMPTZ;
ALTER TABLE agent_last ADD COLUMN IF NOT EXISTS queues_state VARCHAR;
DELETE FROM agent_last;
INSERT INTO agent_last BY NAME SELECT * FROM last_agent_events('agent_events');
