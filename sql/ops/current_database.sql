-- Returns the connection's current database: its name and its file path (NULL in memory).
SELECT database_name, path FROM duckdb_databases() WHERE database_name = current_database()
