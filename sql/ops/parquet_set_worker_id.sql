-- Records the worker id this database's Parquet exports are filed under.
INSERT OR REPLACE INTO parquet_identity VALUES (1, $worker);
