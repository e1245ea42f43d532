-- Returns the newest watermark any worker exported a call at (the Parquet views' "data up to").
SELECT max(_exported_wm) FROM read_parquet(getvariable('parquet_root') || '/calls/*/*/*.parquet', hive_partitioning = true, hive_types = {'day': DATE, 'worker': VARCHAR}, union_by_name = true);
