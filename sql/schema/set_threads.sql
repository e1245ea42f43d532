-- Sets how many threads DuckDB uses for the whole database, every connection (returns nothing).
SET threads = $threads
