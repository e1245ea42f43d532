-- Returns the agents parquet_rows holds rows of (column agent_id), one row each.
SELECT DISTINCT agent_id FROM parquet_rows WHERE agent_id IS NOT NULL
