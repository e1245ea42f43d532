-- Records how far a source got; written in the batch's transaction.
INSERT OR REPLACE INTO source_offsets VALUES ($source, $partition, $offset, $updated_at)
