-- Inserts into the temp table window_aggregates the additive aggregates per queue of calls offered in [$lo, $hi] (a rolling window of $width seconds ending at the watermark).
INSERT INTO window_aggregates BY NAME
SELECT queue, interval_start, $width AS interval_s, * EXCLUDE (queue, interval_start)
FROM queue_aggregates($lo, $hi, NULL)
