-- Returns the batch's call events whose key (call_id, queue, event) is not stored yet.
SELECT b.* FROM batch_calls b ANTI JOIN call_events e USING (call_id, queue, event)
