-- Empties the scratch tables before a batch.
DELETE FROM touched_calls;
DELETE FROM touched_q;
DELETE FROM touched_a;
DELETE FROM touched_callers;
