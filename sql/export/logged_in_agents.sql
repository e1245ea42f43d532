-- Returns every agent logged in now (open state segment, not logout) with state, not-ready reason, queues, since when and seconds in the state as of the watermark.
SELECT agent_id, state, coalesce(reason, '') AS reason, coalesce(queues, []::VARCHAR[]) AS queues,
       started_at, duration_s
FROM agent_current
WHERE state <> 'logout'
ORDER BY agent_id
