-- Returns, for every evaluation point m (epoch seconds $first, $first + $step, ..., up to $last), every queue and every window width in $widths (seconds) with a call offered in (m - width, m], the window KPIs as of m: those calls, each with the outcome known at m (a call answered after m is still waiting at m).
-- A call counts at a run of consecutive points, not at each one: offered from the first
-- point at or after offered_at to the last before offered_at + width, abandoned from the
-- first at or after abandoned_at, answered from the first at or after answered_at (which
-- ends abandoned). So each call gives a few +/- steps at point indexes k (m = $first +
-- k * $step; a run begun before $first steps at k = 0) and the KPIs are running sums of
-- the steps: work grows with the calls, not with calls times points per window.
WITH widths AS (
    SELECT unnest($widths::INTEGER[]) AS width_s
), bounds AS (
    -- the index of the last point (-1: none; // truncates toward zero)
    SELECT CASE WHEN $last::BIGINT < $first::BIGINT THEN -1
                ELSE ($last::BIGINT - $first::BIGINT) // $step::BIGINT END AS last_k
), c AS (
    SELECT c.queue, w.width_s,
           cp_seconds_between(c.offered_at, c.answered_at) AS answer_wait_s,
           cp_seconds_between(c.offered_at, c.abandoned_at) AS abandon_wait_s,
           -- the index of the first point at or after a time (NULL: never)
           cp_point_index(c.offered_at, $first, $step) AS offered_from,
           cp_point_index(c.offered_at + to_seconds(w.width_s), $first, $step) AS offered_to,
           cp_point_index(c.answered_at, $first, $step) AS answered_k,
           cp_point_index(c.abandoned_at, $first, $step) AS abandoned_k,
           s.sl_threshold_s, s.short_abandon_s
    FROM call_state c JOIN queue_settings s USING (queue) CROSS JOIN widths w
    WHERE c.offered_at IS NOT NULL
      AND c.offered_at > to_timestamp($first) - to_seconds((SELECT max(width_s) FROM widths))
      AND c.offered_at <= to_timestamp($last)
), runs AS (
    -- one row per call, width and what it counts as for a run of points [lo, hi)
    SELECT queue, width_s, offered_from AS lo, offered_to AS hi,
           1 AS offered, 0 AS answered, 0 AS abandoned, 0 AS short_abandoned,
           0 AS answered_in_sl, 0 AS abandoned_in_sl, 0::BIGINT AS answer_wait_us
    FROM c
    UNION ALL
    SELECT queue, width_s, greatest(answered_k, offered_from), offered_to,
           0, 1, 0, 0, (answer_wait_s <= sl_threshold_s)::INTEGER, 0, cp_us(answer_wait_s)
    FROM c WHERE answered_k IS NOT NULL
    UNION ALL
    SELECT queue, width_s, greatest(abandoned_k, offered_from), least(coalesce(answered_k, offered_to), offered_to),
           0, 0, 1, (abandon_wait_s < short_abandon_s)::INTEGER, 0,
           (abandon_wait_s >= short_abandon_s AND abandon_wait_s <= sl_threshold_s)::INTEGER, 0
    FROM c WHERE abandoned_k IS NOT NULL
), steps AS (
    -- a run adds its values at its first point in range and takes them back after its last
    SELECT queue, width_s, greatest(lo, 0) AS k, 1 AS sign, offered, answered, abandoned,
           short_abandoned, answered_in_sl, abandoned_in_sl, answer_wait_us
    FROM runs, bounds
    WHERE greatest(lo, 0) < hi AND greatest(lo, 0) <= last_k
    UNION ALL
    SELECT queue, width_s, hi AS k, -1 AS sign, offered, answered, abandoned,
           short_abandoned, answered_in_sl, abandoned_in_sl, answer_wait_us
    FROM runs, bounds
    WHERE greatest(lo, 0) < hi AND hi <= last_k
), delta AS (
    SELECT queue, width_s, k,
           sum(sign * offered) AS offered, sum(sign * answered) AS answered,
           sum(sign * abandoned) AS abandoned, sum(sign * short_abandoned) AS short_abandoned,
           sum(sign * answered_in_sl) AS answered_in_sl, sum(sign * abandoned_in_sl) AS abandoned_in_sl,
           sum(sign * answer_wait_us) AS answer_wait_us
    FROM steps
    GROUP BY ALL
), grid AS (
    -- every point for each queue and width with a step, so a run's value carries over the
    -- points between steps
    SELECT g.queue, g.width_s, k.k
    FROM (SELECT DISTINCT queue, width_s FROM delta) g
    CROSS JOIN bounds b
    CROSS JOIN unnest(range(0, b.last_k + 1)) AS k(k)
), agg AS (
    SELECT g.queue, g.width_s, g.k,
           sum(coalesce(d.offered, 0)) OVER w AS offered,
           sum(coalesce(d.answered, 0)) OVER w AS answered,
           sum(coalesce(d.abandoned, 0)) OVER w AS abandoned,
           sum(coalesce(d.short_abandoned, 0)) OVER w AS short_abandoned,
           sum(coalesce(d.answered_in_sl, 0)) OVER w AS answered_in_sl,
           sum(coalesce(d.abandoned_in_sl, 0)) OVER w AS abandoned_in_sl,
           sum(coalesce(d.answer_wait_us, 0)) OVER w AS answer_wait_us
    FROM grid g LEFT JOIN delta d USING (queue, width_s, k)
    WINDOW w AS (PARTITION BY g.queue, g.width_s ORDER BY g.k ROWS UNBOUNDED PRECEDING)
)
SELECT to_timestamp($first + g.k * $step) AS m, g.queue, g.width_s::INTEGER AS width_s,
       g.offered::BIGINT AS offered, s.min_calls,
       cp_service_level(s.sl_formula, g.answered_in_sl::BIGINT, g.abandoned_in_sl::BIGINT, g.offered::BIGINT,
                        g.short_abandoned::BIGINT, g.answered::BIGINT) AS service_level,
       cp_abandon_rate(g.abandoned::BIGINT, g.short_abandoned::BIGINT, g.offered::BIGINT) AS abandon_rate,
       cp_ratio(g.answer_wait_us::BIGINT / 1e6, g.answered::BIGINT) AS asa_s,
       s.target_service_level, s.target_abandon_rate, s.target_asa_s
FROM agg g JOIN queue_settings s USING (queue)
WHERE g.offered > 0
ORDER BY m, g.queue, width_s
