-- Writes the rows of the Parquet files $files (one worker's day of one table) into the one file $path, every version kept (the views pick the newest).
COPY (SELECT * FROM read_parquet($files, union_by_name = true) ORDER BY _seq, _exported_wm) TO $path (FORMAT parquet);
