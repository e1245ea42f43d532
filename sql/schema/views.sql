-- Creates the KPI macros and the stable views analysts query (idempotent).

-- x / y, NULL when y is not positive: undefined KPIs are NULL, never 0 or NaN.
CREATE OR REPLACE MACRO cp_ratio(num, den) AS CASE WHEN den > 0 THEN num / den END;

-- Service level by formula; short abandons are removed from offered first.
CREATE OR REPLACE MACRO cp_service_level(formula, answered_in_sl, abandoned_in_sl, offered, short_abandoned, answered) AS
    CASE formula
        WHEN 'negative'         THEN cp_ratio(answered_in_sl, offered - short_abandoned)
        WHEN 'without_abandons' THEN cp_ratio(answered_in_sl, offered - short_abandoned - abandoned_in_sl)
        WHEN 'positive'         THEN cp_ratio(answered_in_sl + abandoned_in_sl, offered - short_abandoned)
        WHEN 'answered_only'    THEN cp_ratio(answered_in_sl, answered)
    END;

CREATE OR REPLACE MACRO cp_abandon_rate(abandoned, short_abandoned, offered) AS
    cp_ratio(abandoned - short_abandoned, offered - short_abandoned);

-- Seconds from a to b (TIMESTAMPTZ): the elapsed microseconds / 1e6, the same DOUBLE as
-- epoch(b - a) for any span under a day, at a fifteenth of the cost (subtracting two
-- TIMESTAMPTZ builds an INTERVAL through ICU's calendar: ~235 against ~16 ns a row here,
-- and the calls view does it for every call a KPI query reads). Longer spans stay exact
-- elapsed time, where the calendar would count days (and DST) in the session's zone.
CREATE OR REPLACE MACRO cp_seconds_between(a, b) AS (epoch_us(b) - epoch_us(a)) / 1e6;

-- The index k of the first point first_s + k * step_s (epoch seconds) at or after ts, NULL
-- for NULL: a ceiling division in whole microseconds (DuckDB's // truncates toward zero).
CREATE OR REPLACE MACRO cp_point_index(ts, first_s, step_s) AS (
    CASE WHEN epoch_us(ts) > first_s::BIGINT * 1000000
         THEN (epoch_us(ts) - first_s::BIGINT * 1000000 + step_s::BIGINT * 1000000 - 1) // (step_s::BIGINT * 1000000)
         ELSE (epoch_us(ts) - first_s::BIGINT * 1000000) // (step_s::BIGINT * 1000000) END);

CREATE OR REPLACE MACRO cp_bucket(ts, width_s) AS to_timestamp(floor(epoch(ts) / width_s) * width_s);

-- Every width_s-long interval start from lo's interval to hi's, both included (a list).
CREATE OR REPLACE MACRO cp_buckets(lo, hi, width_s) AS list_transform(
    range(CAST(floor(epoch(lo) / width_s) * width_s AS BIGINT),
          CAST(floor(epoch(hi) / width_s) * width_s AS BIGINT) + 1,
          CAST(width_s AS BIGINT)),
    lambda x: to_timestamp(x));

-- Seconds s (a whole number of microseconds / 1e6, as agent_interval holds its times)
-- plus us microseconds: the same DOUBLE as all those microseconds / 1e6, because the
-- round trip through s * 1e6 is exact below 2^51 microseconds (71 years; a row holds
-- at most one interval).
CREATE OR REPLACE MACRO cp_seconds_plus_us(s, us) AS (round(s * 1e6)::BIGINT + us) / 1e6;

-- Seconds as whole microseconds (BIGINT). Every sum of durations (or scores) goes
-- through it: sum(cp_us(x)) / 1e6 adds integers, which no row order can change, and
-- divides once, so a KPI is the very same DOUBLE however the batches came. A sum of the
-- DOUBLEs themselves depends on the order DuckDB happens to add them in. Exact for the
-- stored seconds (whole microseconds / 1e6) and for inputs given to the microsecond.
CREATE OR REPLACE MACRO cp_us(s) AS round(s * 1e6)::BIGINT;

-- One row per call and queue it was offered to, with its outcome as of the watermark.
-- A call waiting longer than its queue's orphan_after is closed as exited then.
CREATE OR REPLACE VIEW calls AS
WITH base AS (
    SELECT c.*,
           s.sl_threshold_s, s.short_abandon_s, s.repeat_window_s,
           s.orphan_after_s,
           (c.answered_at IS NULL AND c.abandoned_at IS NULL AND c.exited_at IS NULL
            AND c.offered_at + to_seconds(s.orphan_after_s) < p.watermark) AS orphaned,
           p.interval_s
    FROM call_state c
    LEFT JOIN queue_settings s USING (queue)
    CROSS JOIN pipeline_state p
), outcomes AS (
    SELECT *,
           CASE WHEN answered_at IS NOT NULL THEN 'answered'
                WHEN abandoned_at IS NOT NULL THEN 'abandoned'
                WHEN exited_at IS NOT NULL OR orphaned THEN 'exited'
                ELSE 'waiting' END AS outcome,
           -- computed for orphans only: TIMESTAMPTZ + INTERVAL goes through ICU too
           CASE WHEN orphaned THEN offered_at + to_seconds(orphan_after_s) ELSE exited_at END AS exited_at_eff
    FROM base
), waits AS (
    SELECT *,
           cp_seconds_between(offered_at, CASE outcome WHEN 'answered' THEN answered_at
                                                       WHEN 'abandoned' THEN abandoned_at
                                                       WHEN 'exited' THEN exited_at_eff END) AS wait_s,
           CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL
                THEN coalesce(talk_s, greatest(cp_seconds_between(answered_at, ended_at) - coalesce(hold_s, 0), 0)) END AS talk_eff
    FROM outcomes
)
SELECT call_id, queue, caller_key, agent_id, offered_at, answered_at, abandoned_at,
       exited_at_eff AS exited_at, ended_at, outcome, wait_s,
       talk_eff AS talk_s, hold_s, wrap_s,
       CASE WHEN talk_eff IS NOT NULL THEN talk_eff + coalesce(hold_s, 0) + coalesce(wrap_s, 0) END AS handle_s,
       transferred_at IS NOT NULL AS transferred, case_id, category, resolved,
       caller_masked,
       cp_bucket(offered_at, interval_s) AS interval_start,
       outcome = 'abandoned' AND wait_s < short_abandon_s AS short_abandon,
       outcome = 'answered' AND wait_s <= sl_threshold_s AS answered_in_sl,
       outcome = 'abandoned' AND wait_s >= short_abandon_s AND wait_s <= sl_threshold_s AS abandoned_in_sl,
       CASE WHEN outcome = 'answered' AND caller_key IS NOT NULL
            THEN coalesce(next_contact_at <= contact_started_at + to_seconds(repeat_window_s), false) END AS repeat_contact
FROM waits;

-- Additive queue aggregates of calls offered in [lo, hi), per bucket_s-long interval
-- (bucket_s NULL: one row per queue with interval_start = lo, for rolling windows).
CREATE OR REPLACE MACRO queue_aggregates(lo, hi, bucket_s) AS TABLE
SELECT queue,
       CASE WHEN bucket_s IS NULL THEN lo ELSE cp_bucket(offered_at, bucket_s) END AS interval_start,
       count(*)                                          AS offered,
       count(*) FILTER (WHERE outcome = 'answered')      AS answered,
       count(*) FILTER (WHERE outcome = 'abandoned')     AS abandoned,
       count(*) FILTER (WHERE short_abandon)             AS short_abandoned,
       count(*) FILTER (WHERE outcome = 'exited')        AS exited,
       count(*) FILTER (WHERE outcome = 'waiting')       AS waiting,
       count(*) FILTER (WHERE answered_in_sl)            AS answered_in_sl,
       count(*) FILTER (WHERE abandoned_in_sl)           AS abandoned_in_sl,
       coalesce(sum(cp_us(wait_s)) FILTER (WHERE outcome = 'answered'), 0) / 1e6 AS answer_wait_s,
       count(handle_s)                                   AS handled,
       coalesce(sum(cp_us(handle_s)), 0) / 1e6           AS handle_s,
       count(*) FILTER (WHERE transferred)               AS transferred,
       max(wait_s)                                       AS max_wait_s,
       count(repeat_contact)                             AS repeat_eligible,
       count(*) FILTER (WHERE repeat_contact)            AS repeated
FROM calls
WHERE offered_at >= lo AND offered_at < hi
GROUP BY ALL;

-- The staffing need's patience inputs from the calls offered in [lo, hi) that are not
-- short abandons, per bucket_s-long interval (bucket_s NULL: one row per queue with
-- interval_start = lo): abandoned (how many hung up) and wait_s (the seconds they all
-- waited, a call still waiting counted up to wm).
CREATE OR REPLACE MACRO patience_inputs(lo, hi, bucket_s, wm) AS TABLE
SELECT queue,
       CASE WHEN bucket_s IS NULL THEN lo ELSE cp_bucket(offered_at, bucket_s) END AS interval_start,
       count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
       coalesce(sum(cp_us(coalesce(wait_s, cp_seconds_between(offered_at, wm)))), 0) / 1e6 AS wait_s
FROM calls
WHERE offered_at >= lo AND offered_at < hi AND NOT coalesce(short_abandon, false)
GROUP BY ALL;

-- KPI ratios over a relation of additive queue aggregates (queue, interval_start,
-- interval_s and the queue_interval sums): the one place the KPI formulas live.
CREATE OR REPLACE MACRO kpi_queue_ratios(agg_table) AS TABLE
SELECT g.queue, g.interval_start, g.interval_s::INTEGER AS interval_s,
       g.offered::BIGINT AS offered, g.answered::BIGINT AS answered, g.abandoned::BIGINT AS abandoned,
       g.short_abandoned::BIGINT AS short_abandoned, g.exited::BIGINT AS exited,
       g.answered_in_sl::BIGINT AS answered_in_sl,
       cp_service_level(s.sl_formula, g.answered_in_sl, g.abandoned_in_sl, g.offered, g.short_abandoned, g.answered) AS service_level,
       cp_ratio(g.answer_wait_s, g.answered) AS asa_s,
       cp_abandon_rate(g.abandoned, g.short_abandoned, g.offered) AS abandon_rate,
       cp_ratio(g.handle_s, g.handled) AS aht_s,
       cp_ratio(g.transferred, g.answered) AS transfer_rate,
       g.max_wait_s,
       g.waiting::BIGINT AS waiting,
       g.abandoned_in_sl::BIGINT AS abandoned_in_sl,
       g.handled::BIGINT AS handled,
       g.transferred::BIGINT AS transferred,
       cp_ratio(g.repeated, g.repeat_eligible) AS repeat_rate,
       1 - cp_ratio(g.repeated, g.repeat_eligible) AS fcr
FROM query_table(agg_table) g LEFT JOIN queue_settings s USING (queue);

-- queue_interval summed into width-long periods in the site's time zone.
CREATE OR REPLACE MACRO queue_interval_grouped(width) AS TABLE
SELECT queue,
       time_bucket(width, interval_start, (SELECT timezone FROM pipeline_state)) AS interval_start,
       epoch(width) AS interval_s,
       sum(offered) AS offered, sum(answered) AS answered, sum(abandoned) AS abandoned,
       sum(short_abandoned) AS short_abandoned, sum(exited) AS exited, sum(waiting) AS waiting,
       sum(answered_in_sl) AS answered_in_sl, sum(abandoned_in_sl) AS abandoned_in_sl,
       sum(cp_us(answer_wait_s)) / 1e6 AS answer_wait_s, sum(handled) AS handled,
       sum(cp_us(handle_s)) / 1e6 AS handle_s,
       sum(transferred) AS transferred, max(max_wait_s) AS max_wait_s,
       sum(repeat_eligible) AS repeat_eligible, sum(repeated) AS repeated
FROM queue_interval
GROUP BY ALL;

CREATE OR REPLACE VIEW queue_interval_agg AS
SELECT q.*, p.interval_s FROM queue_interval q CROSS JOIN pipeline_state p;
CREATE OR REPLACE VIEW queue_hourly_agg AS SELECT * FROM queue_interval_grouped(INTERVAL 1 HOUR);
CREATE OR REPLACE VIEW queue_daily_agg AS SELECT * FROM queue_interval_grouped(INTERVAL 1 DAY);

-- Queue KPIs per interval (the configured length), per hour and per site-local day.
CREATE OR REPLACE VIEW kpi_queue_interval AS SELECT * FROM kpi_queue_ratios('queue_interval_agg');
CREATE OR REPLACE VIEW kpi_queue_hourly AS SELECT * FROM kpi_queue_ratios('queue_hourly_agg');
CREATE OR REPLACE VIEW kpi_queue_daily AS SELECT * FROM kpi_queue_ratios('queue_daily_agg');

-- Agent state segments: each state lasts until the agent's next event; the current
-- one is open (ended_at NULL, duration so far as of the watermark).
CREATE OR REPLACE VIEW agent_states AS
SELECT agent_id, state, reason,
       ts AS started_at,
       lead(ts) OVER w AS ended_at,
       cp_seconds_between(ts, coalesce(lead(ts) OVER w, (SELECT watermark FROM pipeline_state))) AS duration_s,
       last_value(queues IGNORE NULLS) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS queues
FROM agent_events
WINDOW w AS (PARTITION BY agent_id ORDER BY ts, state);

-- Each agent's state just before `upto`: its last event before it in (ts, state) order (of
-- several changes at one instant, the one that lasts), with the queues it last reported
-- before `upto`. Two aggregations, not a window over every agent event.
CREATE OR REPLACE MACRO agent_last_before(upto) AS TABLE
WITH last AS (
    SELECT agent_id, max({'ts': ts, 'state': state}) AS k,
           arg_max(queues, {'ts': ts, 'state': state}) FILTER (WHERE queues IS NOT NULL) AS queues
    FROM agent_events WHERE ts < upto GROUP BY agent_id
)
SELECT e.agent_id, e.ts, e.state, e.reason, l.queues
FROM last l JOIN agent_events e ON e.agent_id = l.agent_id AND e.ts = l.k.ts AND e.state = l.k.state;

-- The agent events that can overlap [lo, hi]: each agent's state when it opens (its last
-- event before lo, carrying the queues it last reported) and every change inside it.
-- Window queries read these instead of each agent's whole history.
CREATE OR REPLACE MACRO agent_events_from(lo, hi) AS TABLE
SELECT agent_id, ts, state, reason, queues FROM agent_last_before(lo)
UNION ALL
SELECT agent_id, ts, state, reason, queues FROM agent_events WHERE ts >= lo AND ts <= hi;

-- Each agent's current state: its last event in (ts, state) order, the queues it last
-- reported, since when and seconds in it as of the watermark. The same rows as
-- agent_states WHERE ended_at IS NULL. The boards read it on every refresh, so it reads
-- agent_last (one row per agent, kept per batch), not the agents' whole history.
CREATE OR REPLACE VIEW agent_current AS
SELECT agent_id, state, reason, queues, ts AS started_at,
       cp_seconds_between(ts, (SELECT watermark FROM pipeline_state)) AS duration_s
FROM agent_last;

-- Agent KPIs per interval: calls by the interval they were offered in, state time
-- clipped to the interval, QA scores by evaluation time.
CREATE OR REPLACE MACRO kpi_agent_rollup(width) AS TABLE
WITH g AS (
    SELECT agent_id,
           time_bucket(width, interval_start, (SELECT timezone FROM pipeline_state)) AS interval_start,
           sum(handled) AS handled, sum(cp_us(handle_s)) / 1e6 AS handle_s,
           sum(cp_us(ready_s)) / 1e6 AS ready_s, sum(cp_us(busy_s)) / 1e6 AS busy_s,
           sum(cp_us(wrap_s)) / 1e6 AS wrap_s, sum(cp_us(not_ready_s)) / 1e6 AS not_ready_s,
           sum(qa_count) AS qa_count, sum(cp_us(qa_sum)) / 1e6 AS qa_sum
    FROM agent_interval GROUP BY ALL
)
SELECT agent_id, interval_start, epoch(width)::INTEGER AS interval_s,
       handled::BIGINT AS handled, cp_ratio(handle_s, handled) AS aht_s,
       ready_s, busy_s, wrap_s, not_ready_s,
       cp_ratio(busy_s + wrap_s, busy_s + wrap_s + ready_s) AS occupancy,
       cp_ratio(qa_sum, qa_count) AS qa_score
FROM g;

CREATE OR REPLACE VIEW kpi_agent_interval AS
SELECT * FROM kpi_agent_rollup(to_seconds((SELECT interval_s FROM pipeline_state)));
CREATE OR REPLACE VIEW kpi_agent_daily AS SELECT * FROM kpi_agent_rollup(INTERVAL 1 DAY);

-- One row per case: first offer of any call with the case_id to the end of the call
-- marked resolved. resolved_first_contact is NULL while the case is open. Offers (or ends)
-- at one instant are taken in call_id, then queue order: arg_min alone would pick any of
-- them, whichever row the scan or a thread met first.
CREATE OR REPLACE VIEW cases AS
WITH c AS (SELECT * FROM calls WHERE case_id IS NOT NULL AND offered_at IS NOT NULL),
agg AS (
    SELECT case_id,
           arg_min(queue, {'t': offered_at, 'call': call_id, 'queue': queue}) AS queue,
           arg_min(category, {'t': offered_at, 'call': call_id, 'queue': queue})
               FILTER (WHERE category IS NOT NULL) AS category,
           min(offered_at) AS first_offered_at,
           min(ended_at) FILTER (WHERE resolved) AS resolved_at,
           count(DISTINCT call_id) AS contacts,
           min({'t': offered_at, 'call': call_id}).call AS first_call_id,
           min({'t': ended_at, 'call': call_id}) FILTER (WHERE resolved AND ended_at IS NOT NULL).call
               AS resolving_call_id
    FROM c GROUP BY case_id
)
SELECT case_id, queue, category, first_offered_at, resolved_at, contacts,
       epoch(resolved_at - first_offered_at) AS resolution_s,
       CASE WHEN resolved_at IS NOT NULL THEN resolving_call_id = first_call_id END AS resolved_first_contact
FROM agg;

-- Case resolution by queue and category: median and p90 resolution time, first-contact share.
CREATE OR REPLACE VIEW kpi_case_resolution AS
SELECT queue, category,
       count(*) AS cases,
       count(resolved_at) AS resolved,
       median(resolution_s) AS median_resolution_s,
       quantile_cont(resolution_s, 0.9) AS p90_resolution_s,
       cp_ratio(count(*) FILTER (WHERE resolved_first_contact), count(resolved_at)) AS first_contact_resolution_rate
FROM cases GROUP BY ALL;

-- Centre totals per interval: a call counts once however many queues it visits; its
-- outcome is answered if any queue answered it, else that of its last queue. Of queues
-- offered it at one instant, a finished leg (abandoned, exited) goes before one still
-- waiting (the caller hung up or left: the call is not waiting), then the last by name;
-- arg_max on the time alone would take whichever row it met first.
CREATE OR REPLACE VIEW kpi_centre_interval AS
WITH per_call AS (
    SELECT call_id, min(offered_at) AS offered_at, min(interval_start) AS interval_start,
           CASE WHEN bool_or(outcome = 'answered') THEN 'answered'
                ELSE arg_max(outcome, {'t': offered_at, 'done': outcome <> 'waiting', 'queue': queue}) END AS outcome
    FROM calls WHERE offered_at IS NOT NULL GROUP BY call_id
)
SELECT interval_start, (SELECT interval_s FROM pipeline_state) AS interval_s,
       count(*) AS offered,
       count(*) FILTER (WHERE outcome = 'answered') AS answered,
       count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
       count(*) FILTER (WHERE outcome = 'exited') AS exited,
       count(*) FILTER (WHERE outcome = 'waiting') AS waiting
FROM per_call GROUP BY interval_start;

-- Media quality per call offered in [lo, hi): every quality record of the call (legs and
-- directions) folded into its worst values (lowest MOS, R and vendor score; highest jitter,
-- loss and RTT), in the first queue the call was offered to (as the centre totals count a
-- call once), with that queue's agent and offer interval. A record arriving long after the
-- call lands in the interval of the offer. Quality of a call not (yet) known is left out
-- until its call arrives (quality_reports holds it meanwhile). Poor: against the queue's
-- thresholds (queue_settings.poor_*); poor_mos NULL without a MOS, poor_network NULL
-- without loss or jitter, poor = either.
CREATE OR REPLACE MACRO call_quality_between(lo, hi) AS TABLE
WITH firsts AS (
    SELECT call_id, min({'t': offered_at, 'queue': queue, 'agent_id': agent_id}) AS f
    FROM call_state
    -- one scan, bounded so DuckDB skips old row groups: the calls offered in [lo, hi), each
    -- with its first offer, searched back a day (no real call lasts that long)
    WHERE offered_at >= lo - INTERVAL 1 DAY AND offered_at < hi
    GROUP BY call_id
    HAVING max(offered_at) >= lo
), per_call AS (
    SELECT call_id, count(*) AS reports, max(ts) AS reported_at,
           min(mos) AS mos, min(r_factor) AS r_factor,
           max(jitter_ms) AS jitter_ms, max(loss_pct) AS loss_pct, max(rtt_ms) AS rtt_ms,
           -- the kind of the lowest score's own report (of equal scores, the first kind by name)
           min(vendor_score) AS vendor_score,
           min({'s': vendor_score, 'kind': vendor_score_kind}) FILTER (WHERE vendor_score IS NOT NULL).kind
               AS vendor_score_kind,
           min(trunk) AS trunk,
           list_sort(list_distinct(flatten(list(tags) FILTER (WHERE tags IS NOT NULL)))) AS tags
    FROM quality_reports SEMI JOIN firsts USING (call_id)
    -- as above: a record stamped more than a day before its call's offer is not searched
    WHERE ts >= lo - INTERVAL 2 DAY
    GROUP BY call_id
)
SELECT p.call_id, f.f.queue AS queue, f.f.agent_id AS agent_id, f.f.t AS offered_at,
       cp_bucket(f.f.t, (SELECT interval_s FROM pipeline_state)) AS interval_start,
       p.reports, p.reported_at, p.mos, p.r_factor, p.jitter_ms, p.loss_pct, p.rtt_ms,
       p.vendor_score, p.vendor_score_kind, p.trunk, p.tags,
       p.mos < s.poor_mos AS poor_mos,
       CASE WHEN p.loss_pct IS NOT NULL OR p.jitter_ms IS NOT NULL
            THEN coalesce(p.loss_pct > s.poor_loss_pct, false) OR coalesce(p.jitter_ms > s.poor_jitter_ms, false)
       END AS poor_network,
       coalesce(p.mos < s.poor_mos, false) OR coalesce(p.loss_pct > s.poor_loss_pct, false)
           OR coalesce(p.jitter_ms > s.poor_jitter_ms, false) AS poor
FROM per_call p
JOIN firsts f USING (call_id)
LEFT JOIN queue_settings s ON s.queue = f.f.queue
WHERE f.f.t >= lo AND f.f.t < hi;

CREATE OR REPLACE VIEW call_quality AS
SELECT * FROM call_quality_between('-infinity'::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

-- Quality KPIs of the calls offered in [lo, hi) per key and bucket_s-long interval (bucket_s
-- NULL: one row per key with interval_start = lo, for rolling windows). The key is `per`:
-- 'queue' (the call's first queue) or 'agent' (the agent who answered it there; calls no
-- agent answered are left out). Every share's denominator is the calls that have the
-- measure; undefined KPIs are NULL.
CREATE OR REPLACE MACRO quality_kpis_by(lo, hi, bucket_s, per) AS TABLE
WITH c AS (
    SELECT CASE per WHEN 'queue' THEN queue WHEN 'agent' THEN agent_id END AS key, *
    FROM call_quality_between(lo, hi)
)
SELECT key,
       CASE WHEN bucket_s IS NULL THEN lo ELSE cp_bucket(offered_at, bucket_s) END AS interval_start,
       count(*)                                            AS calls,
       count(mos)                                          AS mos_calls,
       cp_ratio(sum(cp_us(mos)) / 1e6, count(mos))         AS mos_mean,
       count(*) FILTER (WHERE poor_mos)                    AS poor_mos_calls,
       cp_ratio(count(*) FILTER (WHERE poor_mos), count(mos)) AS poor_mos_ratio,
       quantile_cont(jitter_ms, 0.95)                      AS jitter_p95_ms,
       cp_ratio(sum(cp_us(loss_pct)) / 1e6, count(loss_pct)) AS loss_mean_pct,
       cp_ratio(sum(cp_us(rtt_ms)) / 1e6, count(rtt_ms))   AS rtt_mean_ms,
       count(poor_network)                                 AS network_calls,
       count(*) FILTER (WHERE poor_network)                AS poor_network_calls,
       cp_ratio(count(*) FILTER (WHERE poor_network), count(poor_network)) AS poor_network_ratio,
       count(*) FILTER (WHERE poor)                        AS poor_calls,
       cp_ratio(count(*) FILTER (WHERE poor), count(*))    AS poor_quality_ratio
FROM c
WHERE key IS NOT NULL
GROUP BY ALL;

-- The same per queue (the wallboard's rolling window, kpi_quality_interval).
CREATE OR REPLACE MACRO quality_kpis(lo, hi, bucket_s) AS TABLE
SELECT * RENAME (key AS queue) FROM quality_kpis_by(lo, hi, bucket_s, 'queue');

-- Quality KPIs per queue and interval (the configured length), by the interval each call was offered in.
CREATE OR REPLACE VIEW kpi_quality_interval AS
SELECT q.queue, q.interval_start, p.interval_s, q.* EXCLUDE (queue, interval_start)
FROM quality_kpis('-infinity'::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ, (SELECT interval_s FROM pipeline_state)) q
CROSS JOIN pipeline_state p;

-- Quality KPIs per agent and interval (the configured length), by the interval each call was
-- offered in; a call counts for the agent who answered it in its first queue.
CREATE OR REPLACE VIEW kpi_quality_agent_interval AS
SELECT q.key AS agent_id, q.interval_start, p.interval_s, q.* EXCLUDE (key, interval_start)
FROM quality_kpis_by('-infinity'::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ, (SELECT interval_s FROM pipeline_state), 'agent') q
CROSS JOIN pipeline_state p;
