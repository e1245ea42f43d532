-- Returns the call_state rows of the calls in batch_calls: what is stored of them before this batch.
-- One scan of call_state, one row per call, serves the batch's dedupe, its order checks and
-- the intervals its calls leave (call_state holds each event kind's time: a call stores
-- at most one event of each kind).
SELECT s.* FROM call_state s SEMI JOIN batch_calls b USING (call_id, queue)
