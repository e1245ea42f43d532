-- Rebuilds the call_state rows of the calls in touched_calls from their stored events.
DELETE FROM call_state USING touched_calls t
WHERE call_state.call_id = t.call_id AND call_state.queue = t.queue;
INSERT INTO call_state SELECT * FROM touched_call_state('-infinity'::TIMESTAMPTZ);
