-- Rebuilds agent_last from agent_events (at open, and in a rebuild).
DELETE FROM agent_last;
-- of several changes at one instant, the last in (ts, state) order is the one that lasts
INSERT INTO agent_last
SELECT agent_id, max(ts), arg_max(state, (ts, state)) FROM agent_events GROUP BY agent_id;
