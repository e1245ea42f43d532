-- Returns the batch's agent events whose key (agent_id, ts, state) is not stored yet.
-- The key holds the time, so only stored events in the batch's time range [$lo, $hi] can
-- match: DuckDB skips the row groups outside it by their min/max ts.
SELECT b.* FROM batch_agents b
ANTI JOIN (SELECT agent_id, ts, state FROM agent_events WHERE ts >= $lo AND ts <= $hi) e USING (agent_id, ts, state)
