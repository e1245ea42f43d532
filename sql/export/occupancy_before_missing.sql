-- Returns how many agents with an event at or after $lo (the widest window's start) have no event from $since before $lo, or, having reported their queues only from $lo on, no queues reported from $since before it (0: $since bounds queue_occupancy's search for their state when the window opens).
WITH b AS (SELECT agent_id, queues_ts FROM agent_last WHERE ts >= $lo::TIMESTAMPTZ),
found AS (
    SELECT e.agent_id, bool_or(e.queues IS NOT NULL) AS has_queues
    FROM agent_events e SEMI JOIN b USING (agent_id)
    WHERE e.ts >= $since::TIMESTAMPTZ AND e.ts < $lo::TIMESTAMPTZ
    GROUP BY e.agent_id
)
SELECT count(*) FROM b LEFT JOIN found f USING (agent_id)
WHERE f.agent_id IS NULL OR (b.queues_ts >= $lo::TIMESTAMPTZ AND NOT f.has_queues)
