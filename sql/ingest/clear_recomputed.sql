-- Empties touched_q, touched_a and touched_callers once their intervals and contacts have been recomputed.
DELETE FROM touched_q;
DELETE FROM touched_a;
DELETE FROM touched_callers;
