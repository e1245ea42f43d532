-- Replaces the agent_interval rows of the (agent, interval) pairs in touched_a with fresh aggregates.
DELETE FROM agent_interval USING touched_a t
WHERE agent_interval.agent_id = t.agent_id AND agent_interval.interval_start = t.interval_start
  -- the touched span as values too: the scan skips the intervals before it
  AND agent_interval.interval_start >= $lo AND agent_interval.interval_start < $hi;
INSERT INTO agent_interval
WITH t AS (
    SELECT DISTINCT agent_id, interval_start, interval_start + to_seconds($iv) AS interval_end FROM touched_a
),
-- Each touched agent from its own first touched interval: one late call of one agent must
-- not make every agent's events since then part of the window below. ($lo, the first of
-- all, still bounds the scans so DuckDB can skip row groups by their min/max ts.)
a AS (SELECT agent_id, min(interval_start) AS lo FROM t GROUP BY agent_id),
-- Only the events that can overlap an agent's touched range: those inside it plus the
-- agent's last one before it (its state when the range starts), never its whole history.
-- Events at or after $hi are left out: the last one inside then ends at $wm, which clips
-- to the same interval ends as its real successor would (no event is later than $wm).
-- $before_from bounds that search from below: the earliest of the touched agents' latest
-- events before $lo (pipeline/core/lookback.py), so a batch reads back only as far as
-- its own agents' states lie, never the agents' whole history.
before AS (
    SELECT e.agent_id, max(e.ts) AS ts FROM agent_events e JOIN a USING (agent_id)
    WHERE e.ts < a.lo AND e.ts >= $before_from::TIMESTAMPTZ
    GROUP BY e.agent_id
),
ev AS (
    SELECT e.agent_id, e.state, e.ts FROM agent_events e JOIN a USING (agent_id)
    WHERE e.ts >= a.lo AND e.ts >= $lo AND e.ts < $hi
    UNION ALL
    -- of several changes at that instant, the last in (ts, state) order is the one that lasts
    SELECT e.agent_id, max(e.state), e.ts FROM agent_events e JOIN before b USING (agent_id, ts)
    WHERE e.ts >= $before_from::TIMESTAMPTZ
    GROUP BY e.agent_id, e.ts
),
seg AS (
    SELECT agent_id, state, ts AS started_at,
           coalesce(lead(ts) OVER (PARTITION BY agent_id ORDER BY ts, state), $wm) AS ended_at
    FROM ev
),
-- Times summed in whole microseconds, then made seconds once: extend_open_agents grows
-- these rows by the same microseconds, and both must give the very same DOUBLE.
piece AS (
    SELECT t.agent_id, t.interval_start, seg.state,
           epoch_us(least(seg.ended_at, t.interval_end)) - epoch_us(greatest(seg.started_at, t.interval_start)) AS us
    FROM t JOIN seg ON seg.agent_id = t.agent_id
                   AND seg.started_at < t.interval_end AND seg.ended_at > t.interval_start
    -- only time in a counted state makes a row (logged-out time makes none)
    WHERE seg.state IN ('ready', 'busy', 'wrap', 'not_ready')
),
st AS (
    SELECT agent_id, interval_start,
           sum(us) FILTER (WHERE state = 'ready') / 1e6 AS ready_s,
           sum(us) FILTER (WHERE state = 'busy') / 1e6 AS busy_s,
           sum(us) FILTER (WHERE state = 'wrap') / 1e6 AS wrap_s,
           sum(us) FILTER (WHERE state = 'not_ready') / 1e6 AS not_ready_s
    FROM piece
    GROUP BY ALL
),
handled AS (
    SELECT c.agent_id, c.interval_start, count(c.handle_s) AS handled, coalesce(sum(cp_us(c.handle_s)), 0) / 1e6 AS handle_s
    FROM calls c SEMI JOIN t USING (agent_id, interval_start)
    WHERE c.offered_at >= $lo AND c.offered_at < $hi
    GROUP BY ALL
),
qa AS (
    SELECT q.agent_id, cp_bucket(q.ts, $iv) AS interval_start, count(*) AS qa_count, sum(cp_us(q.score)) / 1e6 AS qa_sum
    FROM qa_evals q WHERE q.agent_id IN (SELECT agent_id FROM t) AND q.ts >= $lo AND q.ts < $hi
    GROUP BY ALL
)
SELECT t.agent_id, t.interval_start,
       coalesce(h.handled, 0), coalesce(h.handle_s, 0),
       coalesce(st.ready_s, 0), coalesce(st.busy_s, 0), coalesce(st.wrap_s, 0), coalesce(st.not_ready_s, 0),
       coalesce(qa.qa_count, 0), coalesce(qa.qa_sum, 0)
FROM t
LEFT JOIN st USING (agent_id, interval_start)
LEFT JOIN handled h USING (agent_id, interval_start)
LEFT JOIN qa USING (agent_id, interval_start)
WHERE st.agent_id IS NOT NULL OR h.agent_id IS NOT NULL OR qa.agent_id IS NOT NULL;
