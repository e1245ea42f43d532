-- Returns, for each agent of $agents with an event before $opens and at or after $since, the time of its latest such event (the agent's state when $opens came is that event's).
SELECT agent_id, max(ts) AS ts
FROM agent_events
WHERE agent_id IN (SELECT unnest($agents::VARCHAR[]))
  AND ts >= $since::TIMESTAMPTZ AND ts < $opens::TIMESTAMPTZ
GROUP BY agent_id
