-- Empties the scratch table of touched calls before a batch (the touched intervals and callers wait for their recompute: clear_recomputed).
DELETE FROM touched_calls;
