-- Records how far each source partition of the batch got, in the batch's transaction:
-- the sources, partitions, offsets and high_watermarks lists are parallel (one statement per batch).
INSERT OR REPLACE INTO source_offsets (source, partition, "offset", updated_at, high_watermark)
SELECT unnest($sources::VARCHAR[]), unnest($partitions::INTEGER[]), unnest($offsets::BIGINT[]), $updated_at,
       unnest($high_watermarks::BIGINT[])
