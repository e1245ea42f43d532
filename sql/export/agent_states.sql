-- Returns every agent not logged out with its current state and not-ready reason ('' if none), as of the watermark.
SELECT agent_id, state, coalesce(reason, '') AS reason
FROM agent_current
WHERE state <> 'logout'
ORDER BY agent_id
