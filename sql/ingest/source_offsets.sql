-- Returns (partition, offset) of the last record of each partition of a source that is stored.
SELECT partition, "offset" FROM source_offsets WHERE source = $source
