-- Creates the view kpi_agent_interval over every worker's Parquet files under parquet_root: the newest version of each (agent_id, interval_start).
CREATE OR REPLACE VIEW kpi_agent_interval AS
SELECT * EXCLUDE (_seq, _exported_wm, day, worker)
FROM read_parquet(getvariable('parquet_root') || '/kpi_agent_interval/*/*/*.parquet', hive_partitioning = true, hive_types = {'day': DATE, 'worker': VARCHAR}, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY agent_id, interval_start ORDER BY _exported_wm DESC, _seq DESC, worker DESC) = 1;
