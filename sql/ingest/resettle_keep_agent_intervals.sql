-- Only queue settings changed: agent intervals don't depend on them, so none is recomputed.
DELETE FROM touched_a;
