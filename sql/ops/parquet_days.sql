-- Returns the site-local days (YYYY-MM-DD) of the rows in parquet_rows with their row counts, in order.
SELECT _day, count(*) FROM parquet_rows GROUP BY _day ORDER BY _day;
