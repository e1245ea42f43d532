-- Returns the snapshot_info row of an analyst snapshot or backup (kind, taken_at, watermark, source_db, copy_ms).
SELECT kind, taken_at, watermark, source_db, copy_ms FROM snapshot_info LIMIT 1
