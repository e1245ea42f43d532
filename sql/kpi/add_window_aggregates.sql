-- Inserts into the temp table window_aggregates the additive aggregates per queue of calls offered in each rolling window of $widths seconds ending at the watermark $wm (start and watermark included), in one statement for all widths.
INSERT INTO window_aggregates BY NAME
SELECT a.queue, a.interval_start, w.width_s AS interval_s, a.* EXCLUDE (queue, interval_start)
FROM (SELECT unnest($widths::INTEGER[]) AS width_s) w,
     LATERAL queue_aggregates($wm::TIMESTAMPTZ - to_seconds(w.width_s), $wm::TIMESTAMPTZ + INTERVAL 1 MICROSECOND, NULL) a
