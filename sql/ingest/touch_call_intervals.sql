-- Inserts into touched_q / touched_a the (queue | agent, interval) of every call in touched_calls, as call_state holds it now.
INSERT INTO touched_q SELECT queue, interval_start FROM touched_call_intervals_in('call_state', $iv);
INSERT INTO touched_a SELECT agent_id, interval_start FROM touched_call_intervals_in('call_state', $iv)
WHERE agent_id IS NOT NULL;
