-- Returns the open breaches (the latest state of each queue, kpi and window, if not closed) with the time each has been back inside its target since, if it has.
SELECT queue, kpi, "window", target, value, worst_value, opened_at, ok_since
FROM breach_log
QUALIFY row_number() OVER (PARTITION BY queue, kpi, "window" ORDER BY decided_at DESC) = 1 AND closed_at IS NULL
ORDER BY queue, kpi, "window", opened_at
