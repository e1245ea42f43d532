-- Returns every known queue with its KPI settings and targets.
SELECT * FROM queue_settings ORDER BY queue
