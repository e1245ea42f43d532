-- Returns how many raw rows retention would delete per table (table_name, rows) at the given cut-offs.
SELECT 'call_events' AS table_name, count(*) AS rows FROM call_events WHERE ts < $events_before
UNION ALL SELECT 'agent_events', count(*) FROM agent_events a
    WHERE a.ts < $events_before AND a.ts < (SELECT max(b.ts) FROM agent_events b WHERE b.agent_id = a.agent_id)
UNION ALL SELECT 'qa_evals', count(*) FROM qa_evals WHERE ts < $events_before
UNION ALL SELECT 'dead_letters', count(*) FROM dead_letters WHERE received_at < $dead_before
