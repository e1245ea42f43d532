-- Rebuilds the call_state rows of the calls in touched_calls from their stored events and lists their callers (touched_callers, all their calls) for the recompute of their contacts.
DELETE FROM call_state USING touched_calls t
WHERE call_state.call_id = t.call_id AND call_state.queue = t.queue;
INSERT INTO call_state SELECT * FROM touched_call_state('-infinity'::TIMESTAMPTZ);
INSERT INTO touched_callers
SELECT DISTINCT caller_key, NULL FROM call_state SEMI JOIN touched_calls USING (call_id, queue) WHERE caller_key IS NOT NULL;
