-- Deletes from parquet_rows the rows exported before with the same content (their mark's hash), leaving the new and the changed.
DELETE FROM parquet_rows r USING parquet_marks m
WHERE m.tbl = $tbl AND m.key = r._key AND m.row_hash = r._hash;
