-- Stores the batch's new quality records (registered as _insert_frame, columns matched by name); returns nothing.
INSERT INTO quality_reports BY NAME SELECT * FROM _insert_frame
