-- Returns agents per queue, state and not-ready reason now (the last state of each agent not logged out), and state_s: their seconds in that state so far, summed, as of the watermark.
WITH current AS (
    SELECT agent_id, state, reason, queues, started_at, duration_s
    FROM agent_current WHERE state <> 'logout'
)
SELECT q.queue, c.state, coalesce(c.reason, '') AS reason, count(*) AS agents, sum(c.duration_s) AS state_s
FROM current c, unnest(coalesce(c.queues, ['']::VARCHAR[])) AS q(queue)
GROUP BY ALL
ORDER BY ALL
