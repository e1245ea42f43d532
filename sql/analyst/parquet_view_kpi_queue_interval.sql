-- Creates the view kpi_queue_interval over every worker's Parquet files under parquet_root: the newest version of each (queue, interval_start).
CREATE OR REPLACE VIEW kpi_queue_interval AS
SELECT * EXCLUDE (_seq, _exported_wm, day, worker)
FROM read_parquet(getvariable('parquet_root') || '/kpi_queue_interval/*/*/*.parquet', hive_partitioning = true, hive_types = {'day': DATE, 'worker': VARCHAR}, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY queue, interval_start ORDER BY _exported_wm DESC, _seq DESC, worker DESC) = 1;
