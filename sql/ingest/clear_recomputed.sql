-- Empties touched_q and touched_a once their intervals have been recomputed.
DELETE FROM touched_q;
DELETE FROM touched_a;
