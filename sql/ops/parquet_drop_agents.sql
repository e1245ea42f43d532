-- Deletes from parquet_rows the rows of the agents in $keys (column agent_id): another worker owns them now.
DELETE FROM parquet_rows WHERE list_contains($keys::VARCHAR[], agent_id)
