-- Creates (or empties) the temp table window_aggregates with the columns of queue_interval_agg.
CREATE OR REPLACE TEMP TABLE window_aggregates AS SELECT * FROM queue_interval_agg LIMIT 0
