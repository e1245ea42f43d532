-- Empties the scratch tables of touched calls before a batch (the touched intervals wait for their recompute: clear_recomputed).
DELETE FROM touched_calls;
DELETE FROM touched_callers;
