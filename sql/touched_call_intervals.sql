-- Inserts into touched_q / touched_a the (queue | agent, interval) of every call in touched_calls, as call_state holds it now.
INSERT INTO touched_q
SELECT queue, cp_bucket(offered_at, $iv) FROM call_state SEMI JOIN touched_calls USING (call_id, queue)
WHERE offered_at IS NOT NULL;
INSERT INTO touched_a
SELECT agent_id, cp_bucket(offered_at, $iv) FROM call_state SEMI JOIN touched_calls USING (call_id, queue)
WHERE offered_at IS NOT NULL AND agent_id IS NOT NULL;
