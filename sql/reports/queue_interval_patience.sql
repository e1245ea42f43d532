-- Returns per queue and interval of the calls offered in [$lo, $hi) (optionally one $queue) that are not short abandons: abandoned (how many hung up) and wait_s (the seconds they all waited, still waiting ones up to the watermark), the patience estimate's inputs for the interval's agents needed (the patience_inputs macro).
SELECT queue, interval_start, abandoned, wait_s
FROM patience_inputs($lo, $hi, (SELECT interval_s FROM pipeline_state), (SELECT watermark FROM pipeline_state))
WHERE CAST($queue AS VARCHAR) IS NULL OR queue = $queue
ORDER BY ALL
