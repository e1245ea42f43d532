-- Rebuilds agent_last from agent_events (at open, and in a rebuild).
DELETE FROM agent_last;
INSERT INTO agent_last BY NAME SELECT * FROM last_agent_events('agent_events');
