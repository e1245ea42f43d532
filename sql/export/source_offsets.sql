-- Returns per Kafka topic and partition the stored offset (of the last message stored), the partition's high watermark the worker knew when it fetched that batch (NULL if unknown) and the lag between them in messages (high_watermark - offset - 1, never below 0).
SELECT substr(source, length('kafka:') + 1) AS topic,
       partition,
       "offset",
       high_watermark,
       CASE WHEN high_watermark IS NOT NULL THEN greatest(high_watermark - "offset" - 1, 0) END AS lag
FROM source_offsets
WHERE starts_with(source, 'kafka:')
ORDER BY topic, partition
