-- Deletes from parquet_rows the rows of the queues in $keys (column queue): another worker owns them now.
DELETE FROM parquet_rows WHERE list_contains($keys::VARCHAR[], queue)
