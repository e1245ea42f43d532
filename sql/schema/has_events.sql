-- Returns whether any call event is stored.
SELECT EXISTS (SELECT 1 FROM call_events) AS has_events
