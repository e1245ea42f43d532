-- Returns the open breaches (breaches rows not closed, each with its latest state in breach_log) with the time each has been back inside its target since, if it has. The join bounds the log's scan to the open breaches' time (DuckDB skips older row groups), not its whole history.
WITH o AS (SELECT queue, kpi, "window", opened_at FROM breaches WHERE closed_at IS NULL)
SELECT l.queue, l.kpi, l."window", l.target, l.value, l.worst_value, l.opened_at, l.ok_since
FROM breach_log l
JOIN o USING (queue, kpi, "window", opened_at)
QUALIFY row_number() OVER (PARTITION BY l.queue, l.kpi, l."window" ORDER BY l.decided_at DESC) = 1
ORDER BY l.queue, l.kpi, l."window", l.opened_at
