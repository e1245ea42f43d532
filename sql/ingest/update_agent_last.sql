-- Moves agent_last on to the batch's new agent events where they are later in (ts, state) order (the state, and separately the queues).
-- queues_ts is NULL for an agent no event reported queues for: guarded with IS NULL, as
-- DuckDB orders a row with a NULL field above any other. Most batches change states, not
-- queues, and only the columns that change are written.
MERGE INTO agent_last AS t
USING last_agent_events('new_agents') AS n
ON t.agent_id = n.agent_id
WHEN MATCHED AND n.queues_ts IS NOT NULL
                 AND (t.queues_ts IS NULL OR (n.queues_ts, n.queues_state) > (t.queues_ts, t.queues_state))
THEN UPDATE SET
    ts           = CASE WHEN (n.ts, n.state) > (t.ts, t.state) THEN n.ts ELSE t.ts END,
    state        = CASE WHEN (n.ts, n.state) > (t.ts, t.state) THEN n.state ELSE t.state END,
    reason       = CASE WHEN (n.ts, n.state) > (t.ts, t.state) THEN n.reason ELSE t.reason END,
    queues       = n.queues,
    queues_ts    = n.queues_ts,
    queues_state = n.queues_state
WHEN MATCHED AND (n.ts, n.state) > (t.ts, t.state) THEN UPDATE SET ts = n.ts, state = n.state, reason = n.reason
WHEN NOT MATCHED THEN INSERT (agent_id, ts, state, reason, queues, queues_ts, queues_state)
    VALUES (n.agent_id, n.ts, n.state, n.reason, n.queues, n.queues_ts, n.queues_state);
