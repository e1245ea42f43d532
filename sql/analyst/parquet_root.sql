-- Sets the variable parquet_root, the directory the Parquet views read every worker's files under.
SET VARIABLE parquet_root = $root;
