-- Creates the pipeline_state row on a new database.
INSERT INTO pipeline_state (id, watermark, interval_s, timezone)
SELECT 1, NULL, $interval_s, $timezone
WHERE NOT EXISTS (SELECT 1 FROM pipeline_state WHERE id = 1)
