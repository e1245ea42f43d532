-- Writes one day's rows of parquet_rows to the Parquet file $path, stamped with the export's $seq and the worker's $watermark (their version).
COPY (
    SELECT * EXCLUDE (_key, _hash, _day, _time),
           CAST($seq AS BIGINT) AS _seq,
           CAST($watermark AS TIMESTAMPTZ) AS _exported_wm
    FROM parquet_rows
    WHERE _day = $day
    ORDER BY _key
) TO $path (FORMAT parquet);
