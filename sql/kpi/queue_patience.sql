-- Returns per queue, of the calls offered in [$lo, $hi) that are not short abandons: abandoned (how many hung up) and wait_s (the seconds they all waited: answered, abandoned, exited, and still waiting up to $wm), the patience estimate's inputs (the patience_inputs macro).
SELECT queue, abandoned, wait_s
FROM patience_inputs($lo, $hi, NULL, $wm)
ORDER BY queue
