-- Inserts the batch's dead letters (batch_dead), skipping exact repeats of stored ones (a replayed file adds none).
INSERT INTO dead_letters
SELECT b.source, b.position, b.reason, b.raw, $received_at
FROM batch_dead b
WHERE NOT EXISTS (
    SELECT 1 FROM dead_letters d
    WHERE d.source = b.source AND d.position IS NOT DISTINCT FROM b.position
      AND d.reason = b.reason AND d.raw IS NOT DISTINCT FROM b.raw
)
