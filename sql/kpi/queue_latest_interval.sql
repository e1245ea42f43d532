-- Returns the KPIs per queue of the interval that contains the watermark $wm ($iv: the interval length; values, not subqueries, so the scan reads that interval's rows only).
SELECT k.* FROM kpi_queue_interval k
WHERE k.interval_start = cp_bucket($wm::TIMESTAMPTZ, $iv::INTEGER)
ORDER BY k.queue
