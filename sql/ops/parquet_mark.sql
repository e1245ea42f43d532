-- Records the content hash of every row of parquet_rows as exported for its table, and forgets the marks of rows older than the lookback (none when it is NULL).
INSERT OR REPLACE INTO parquet_marks SELECT $tbl, _key, _hash, _time FROM parquet_rows;
DELETE FROM parquet_marks WHERE tbl = $tbl AND row_time < CAST($lo AS TIMESTAMPTZ);
