-- Returns the batch's agent events whose key (agent_id, ts, state) is not stored yet.
SELECT b.* FROM batch_agents b ANTI JOIN agent_events e USING (agent_id, ts, state)
