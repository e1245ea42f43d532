-- Records one export (its number, wall-clock time, watermark, frontier and rows written).
INSERT INTO parquet_exports VALUES ($seq, $exported_at, $watermark, $frontier, $rows);
