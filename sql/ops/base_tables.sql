-- Returns the names of the base tables of database $db (schema main), the tables a snapshot or backup copies.
SELECT table_name
FROM duckdb_tables()
WHERE database_name = $db AND schema_name = 'main' AND NOT temporary AND table_name <> 'snapshot_info'
ORDER BY table_name
