-- Returns the KPIs per queue of the interval that contains the watermark.
SELECT k.* FROM kpi_queue_interval k
WHERE k.interval_start = cp_bucket((SELECT watermark FROM pipeline_state), (SELECT interval_s FROM pipeline_state))
ORDER BY k.queue
