-- Returns the next export's number and the previous export's frontier (NULL before the first export).
SELECT coalesce(max(seq), 0) + 1, max(frontier) FROM parquet_exports;
