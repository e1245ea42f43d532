-- Replaces what a stateful adapter remembers of its agents for the batch's source partitions: the sources and partitions lists name the partitions (parallel lists), the a_* parallel lists hold one row per agent.
DELETE FROM adapter_agents a
USING (SELECT unnest($sources::VARCHAR[]) AS source, unnest($partitions::INTEGER[]) AS partition) p
WHERE a.source = p.source AND a.partition = p.partition;
INSERT INTO adapter_agents
SELECT unnest($a_sources::VARCHAR[]), unnest($a_partitions::INTEGER[]), unnest($a_agents::VARCHAR[]),
       unnest($a_queues::VARCHAR[][]), unnest($a_calls::VARCHAR[][]), unnest($a_paused::BOOLEAN[]),
       unnest($a_reasons::VARCHAR[]), unnest($a_last_states::VARCHAR[]), unnest($a_last_reasons::VARCHAR[])
