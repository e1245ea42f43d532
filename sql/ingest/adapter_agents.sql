-- Returns what a stateful adapter remembers of each agent of source $source, partition $partition (as of its stored offset): agent_id, queues, calls, paused, reason, last_state, last_reason.
SELECT agent_id, queues, calls, paused, reason, last_state, last_reason
FROM adapter_agents WHERE source = $source AND partition = $partition
ORDER BY agent_id
