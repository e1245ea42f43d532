-- Returns how many agents of touched_a have no event from $since up to their first touched interval, where the agent-interval recompute looks for their state when that interval starts (0: $since bounds that search).
WITH a AS (SELECT agent_id, min(interval_start) AS lo FROM touched_a GROUP BY agent_id),
found AS (
    SELECT DISTINCT e.agent_id FROM agent_events e JOIN a USING (agent_id)
    WHERE e.ts >= $since::TIMESTAMPTZ AND e.ts < a.lo
)
SELECT count(*) FROM a ANTI JOIN found USING (agent_id)
