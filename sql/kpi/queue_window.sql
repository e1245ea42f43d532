-- Returns the KPIs per queue for each rolling window of $widths seconds ending at the watermark $wm (calls offered from its start to the watermark, both included; interval_s = window length, interval_start = its start), in one statement for all widths.
-- The publisher takes a snapshot after every batch and each statement costs its planning:
-- the aggregates are a CTE the ratios read (query_table sees it), not a temp table filled first.
WITH window_aggregates AS (
    SELECT a.queue, a.interval_start, w.width_s AS interval_s, a.* EXCLUDE (queue, interval_start)
    FROM (SELECT unnest($widths::INTEGER[]) AS width_s) w,
         LATERAL queue_aggregates($wm::TIMESTAMPTZ - to_seconds(w.width_s), $wm::TIMESTAMPTZ + INTERVAL 1 MICROSECOND, NULL) a
)
SELECT * FROM kpi_queue_ratios('window_aggregates') ORDER BY queue, interval_s
