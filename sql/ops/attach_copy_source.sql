-- Attaches the database file $path read-only as {source}, the file a backup or restore copies from; returns nothing.
ATTACH $path AS {source} (READ_ONLY)
