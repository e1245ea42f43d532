-- Marks the calls of the batch (registered as _touched) as touched.
INSERT INTO touched_calls SELECT call_id, queue FROM _touched
