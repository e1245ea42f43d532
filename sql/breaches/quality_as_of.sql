-- Returns, for every evaluation point m (epoch seconds $first, $first + $step, ..., up to $last), every queue and every window width in $widths (seconds), the share of poor-quality calls as of m: calls first offered to the queue in (m - width, m] with quality records stamped at or before m, a call poor when any of those records is past the queue's thresholds; with the calls counted, min_calls and the target.
WITH points AS (
    SELECT to_timestamp(p) AS m FROM unnest(range($first, $last + 1, $step)) AS t(p)
), widths AS (
    SELECT unnest($widths::INTEGER[]) AS width_s
), firsts AS (
    -- one scan, bounded so DuckDB skips old row groups: the calls offered in the windows,
    -- each with its first offer, searched back a day (no real call lasts that long)
    SELECT call_id, min({'t': offered_at, 'queue': queue}) AS f
    FROM call_state
    WHERE offered_at > to_timestamp($first - list_max($widths::INTEGER[])) - INTERVAL 1 DAY
      AND offered_at <= to_timestamp($last)
    GROUP BY call_id
    HAVING max(offered_at) > to_timestamp($first - list_max($widths::INTEGER[]))
), r AS (
    SELECT f.call_id, f.f.queue AS queue, f.f.t AS offered_at, q.ts,
           coalesce(q.mos < s.poor_mos, false) OR coalesce(q.loss_pct > s.poor_loss_pct, false)
               OR coalesce(q.jitter_ms > s.poor_jitter_ms, false) AS poor
    FROM firsts f
    JOIN quality_reports q USING (call_id)
    JOIN queue_settings s ON s.queue = f.f.queue
    WHERE q.ts <= to_timestamp($last)
      -- a bound on ts lets DuckDB skip old row groups; a record stamped more than a day
      -- before its call's offer (a clock far off) is the only one it can miss
      AND q.ts > to_timestamp($first - list_max($widths::INTEGER[])) - INTERVAL 1 DAY
), as_of AS (
    SELECT p.m, w.width_s, r.queue, r.call_id, bool_or(r.poor) AS poor
    FROM points p
    CROSS JOIN widths w
    JOIN r ON r.offered_at > p.m - to_seconds(w.width_s) AND r.offered_at <= p.m AND r.ts <= p.m
    GROUP BY ALL
)
SELECT a.m, a.queue, a.width_s::INTEGER AS width_s, count(*) AS calls, s.min_calls,
       cp_ratio(count(*) FILTER (WHERE a.poor), count(*)) AS poor_quality_ratio,
       s.target_poor_quality_ratio
FROM as_of a JOIN queue_settings s USING (queue)
GROUP BY ALL
ORDER BY a.m, a.queue, width_s
