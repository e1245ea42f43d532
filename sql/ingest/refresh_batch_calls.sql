-- Rebuilds the call_state rows of the batch's calls (touched_calls) from their stored events, marks as touched the (queue | agent, interval) each of them held before (batch_known) and holds now, and lists their callers (touched_callers) for the recompute of their contacts.
-- $lo: the earliest event of these calls, stored (batch_known) or new
CREATE OR REPLACE TEMP TABLE fresh_state AS SELECT * FROM touched_call_state($lo);
DELETE FROM call_state USING touched_calls t
WHERE call_state.call_id = t.call_id AND call_state.queue = t.queue;
INSERT INTO call_state SELECT * FROM fresh_state;
-- before and after in one statement each: every statement costs its planning
INSERT INTO touched_q
SELECT queue, interval_start FROM touched_call_intervals_in('batch_known', $iv)
UNION ALL SELECT queue, interval_start FROM touched_call_intervals_in('fresh_state', $iv);
INSERT INTO touched_a
SELECT agent_id, interval_start FROM (
    SELECT agent_id, interval_start FROM touched_call_intervals_in('batch_known', $iv)
    UNION ALL SELECT agent_id, interval_start FROM touched_call_intervals_in('fresh_state', $iv)
) WHERE agent_id IS NOT NULL;
-- $since: the earliest offer whose contact these calls can change (Store._contacts_from)
INSERT INTO touched_callers SELECT DISTINCT caller_key, $since FROM fresh_state WHERE caller_key IS NOT NULL;
