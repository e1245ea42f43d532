-- Returns the open breaches (closed_at NULL) with the time each has been back inside its target since, if it has.
SELECT b.queue, b.kpi, b."window", b.target, b.value, b.worst_value, b.opened_at, r.ok_since
FROM breaches b
LEFT JOIN breach_recovery r USING (queue, kpi, "window", opened_at)
WHERE b.closed_at IS NULL
ORDER BY b.queue, b.kpi, b."window", b.opened_at
