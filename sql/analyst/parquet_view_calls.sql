-- Creates the view calls over every worker's Parquet files under parquet_root: the newest version of each (call_id, queue).
CREATE OR REPLACE VIEW calls AS
SELECT * EXCLUDE (_seq, _exported_wm, day, worker)
FROM read_parquet(getvariable('parquet_root') || '/calls/*/*/*.parquet', hive_partitioning = true, hive_types = {'day': DATE, 'worker': VARCHAR}, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY call_id, queue ORDER BY _exported_wm DESC, _seq DESC, worker DESC) = 1;
