-- Lowers the calls_changed mark to $since (the earliest event time of the call events, or of the quality records, a batch stored).
INSERT INTO calls_changed VALUES (1, $since)
ON CONFLICT (id) DO UPDATE SET since = least(calls_changed.since, excluded.since)
