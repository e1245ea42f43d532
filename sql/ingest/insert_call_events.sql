-- Stores the batch's new call events (registered as _insert_frame, columns matched by name); returns nothing.
INSERT INTO call_events BY NAME SELECT * FROM _insert_frame
