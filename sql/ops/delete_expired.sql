-- Deletes raw events older than the retention cut-offs (events by event time, dead letters by receipt time); aggregates stay.
DELETE FROM call_events WHERE ts < $events_before;
-- Each agent's latest event is kept: it is the state the agent is still in.
DELETE FROM agent_events a
WHERE a.ts < $events_before AND a.ts < (SELECT max(b.ts) FROM agent_events b WHERE b.agent_id = a.agent_id);
DELETE FROM qa_evals WHERE ts < $events_before;
DELETE FROM dead_letters WHERE received_at < $dead_before
