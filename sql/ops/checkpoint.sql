-- Writes the WAL into the database file, so a finished copy is one file; returns nothing.
CHECKPOINT
