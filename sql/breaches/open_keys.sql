-- Returns the queue, kpi and window of every open breach (closed_at NULL).
SELECT queue, kpi, "window" FROM breaches WHERE closed_at IS NULL ORDER BY ALL
