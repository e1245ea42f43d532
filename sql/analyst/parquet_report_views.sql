-- Creates the views queue_settings (queue, sl_formula) and pipeline_state (interval_s, the site's time zone) from the Parquet queue_interval rows, so the reports' queries run over the Parquet views unchanged.
SET VARIABLE parquet_timezone = $timezone;
CREATE OR REPLACE VIEW queue_settings AS SELECT DISTINCT queue, sl_formula FROM queue_interval;
CREATE OR REPLACE VIEW pipeline_state AS
SELECT max(interval_s) AS interval_s, CAST(getvariable('parquet_timezone') AS VARCHAR) AS timezone FROM queue_interval;
