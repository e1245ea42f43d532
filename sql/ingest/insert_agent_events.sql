-- Stores the batch's new agent events (registered as _insert_frame, columns matched by name); returns nothing.
INSERT INTO agent_events BY NAME SELECT * FROM _insert_frame
