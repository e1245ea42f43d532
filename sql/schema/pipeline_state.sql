-- Returns the single pipeline_state row: watermark, interval length, site time zone.
SELECT watermark, interval_s, timezone FROM pipeline_state WHERE id = 1
