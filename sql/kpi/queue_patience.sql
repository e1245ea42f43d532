-- Returns per queue, of the calls offered in [$lo, $hi) that are not short abandons: abandoned (how many hung up) and wait_s (the seconds they all waited: answered, abandoned, exited, and still waiting up to $wm), the patience estimate's inputs.
SELECT queue,
       count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
       coalesce(sum(cp_us(coalesce(wait_s, cp_seconds_between(offered_at, $wm)))), 0) / 1e6 AS wait_s
FROM calls
WHERE offered_at >= $lo AND offered_at < $hi AND NOT coalesce(short_abandon, false)
GROUP BY queue
ORDER BY queue
