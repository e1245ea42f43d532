-- Returns the first and last interval touched for queues and for agents.
SELECT 'queue' AS side, min(interval_start) AS lo, max(interval_start) AS hi FROM touched_q
UNION ALL
SELECT 'agent', min(interval_start), max(interval_start) FROM touched_a
