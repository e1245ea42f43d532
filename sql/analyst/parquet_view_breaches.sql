-- Creates the view breaches over every worker's Parquet files under parquet_root: the newest version of each (queue, kpi, "window", opened_at), unless that version deletes it.
CREATE OR REPLACE VIEW breaches AS
SELECT * EXCLUDE (_seq, _exported_wm, day, worker, _deleted)
FROM (
    SELECT *
    FROM read_parquet(getvariable('parquet_root') || '/breaches/*/*/*.parquet', hive_partitioning = true, hive_types = {'day': DATE, 'worker': VARCHAR}, union_by_name = true)
    QUALIFY row_number() OVER (PARTITION BY queue, kpi, "window", opened_at ORDER BY _exported_wm DESC, _seq DESC, worker DESC) = 1
)
WHERE NOT _deleted;
