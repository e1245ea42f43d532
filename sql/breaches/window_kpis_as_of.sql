-- Returns, for every evaluation point m (epoch seconds $first, $first + $step, ..., up to $last), every queue and every window width in $widths (seconds), the window KPIs as of m: calls offered in (m - width, m], each with the outcome known at m (a call answered after m is still waiting at m).
WITH points AS (
    SELECT to_timestamp(p) AS m FROM unnest(range($first, $last + 1, $step)) AS t(p)
), widths AS (
    SELECT unnest($widths::INTEGER[]) AS width_s
), c AS (
    SELECT c.queue, c.offered_at, c.answered_at, c.abandoned_at,
           s.sl_threshold_s, s.short_abandon_s
    FROM call_state c JOIN queue_settings s USING (queue)
    WHERE c.offered_at IS NOT NULL
      AND c.offered_at > to_timestamp($first) - to_seconds((SELECT max(width_s) FROM widths))
      AND c.offered_at <= to_timestamp($last)
), as_of AS (
    SELECT p.m, w.width_s, c.queue, c.offered_at, c.sl_threshold_s, c.short_abandon_s,
           CASE WHEN c.answered_at <= p.m THEN 'answered'
                WHEN c.abandoned_at <= p.m THEN 'abandoned'
                ELSE 'other' END AS outcome,   -- exited or waiting: neither counts below
           cp_seconds_between(c.offered_at, CASE WHEN c.answered_at <= p.m THEN c.answered_at
                                                 WHEN c.abandoned_at <= p.m THEN c.abandoned_at END) AS wait_s
    FROM points p
    CROSS JOIN widths w
    JOIN c ON c.offered_at > p.m - to_seconds(w.width_s) AND c.offered_at <= p.m
), agg AS (
    SELECT m, width_s, queue,
           count(*) AS offered,
           count(*) FILTER (WHERE outcome = 'answered') AS answered,
           count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
           count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s < short_abandon_s) AS short_abandoned,
           count(*) FILTER (WHERE outcome = 'answered' AND wait_s <= sl_threshold_s) AS answered_in_sl,
           count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s >= short_abandon_s
                                                        AND wait_s <= sl_threshold_s) AS abandoned_in_sl,
           coalesce(sum(cp_us(wait_s)) FILTER (WHERE outcome = 'answered'), 0) / 1e6 AS answer_wait_s
    FROM as_of
    GROUP BY ALL
)
SELECT g.m, g.queue, g.width_s::INTEGER AS width_s, g.offered::BIGINT AS offered, s.min_calls,
       cp_service_level(s.sl_formula, g.answered_in_sl, g.abandoned_in_sl, g.offered, g.short_abandoned, g.answered) AS service_level,
       cp_abandon_rate(g.abandoned, g.short_abandoned, g.offered) AS abandon_rate,
       cp_ratio(g.answer_wait_s, g.answered) AS asa_s,
       s.target_service_level, s.target_abandon_rate, s.target_asa_s
FROM agg g JOIN queue_settings s USING (queue)
ORDER BY g.m, g.queue, g.width_s
