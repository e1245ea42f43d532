-- Records how far each source partition of the batch got, in the batch's transaction:
-- $sources, $partitions and $offsets are parallel lists (one statement per batch).
INSERT OR REPLACE INTO source_offsets
SELECT unnest($sources::VARCHAR[]), unnest($partitions::INTEGER[]), unnest($offsets::BIGINT[]), $updated_at
