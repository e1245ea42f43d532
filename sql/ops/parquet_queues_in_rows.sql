-- Returns the queues parquet_rows holds rows of (column queue), one row each.
SELECT DISTINCT queue FROM parquet_rows WHERE queue IS NOT NULL
