-- Returns the worker id this database's Parquet exports are filed under (no row: none yet).
SELECT worker FROM parquet_identity WHERE id = 1;
