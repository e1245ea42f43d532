-- Returns the KPIs per queue for each rolling window in window_aggregates (interval_s = window length, interval_start = its start).
SELECT * FROM kpi_queue_ratios('window_aggregates') ORDER BY queue, interval_s
