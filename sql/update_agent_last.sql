-- Moves agent_last on to the batch's new agent events where they are later in (ts, state) order.
MERGE INTO agent_last AS t
USING last_agent_events('new_agents') AS n
ON t.agent_id = n.agent_id
WHEN MATCHED AND (n.ts, n.state) > (t.ts, t.state) THEN UPDATE SET ts = n.ts, state = n.state
WHEN NOT MATCHED THEN INSERT VALUES (n.agent_id, n.ts, n.state);
