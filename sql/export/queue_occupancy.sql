-- Returns per queue, for each window width in $widths (seconds) ending at $wm, the occupancy: (busy + wrap) / (busy + wrap + ready) time of the agents serving the queue (NULL without such time). Reads only the widest window's events (from $lo) plus each agent's last state and queues before it: from agent_last for an agent with no event since, else searched from $since (NULL: all; see export/occupancy_before_missing).
WITH w AS (
    SELECT unnest($widths::INTEGER[]) AS width_s
), idle AS (
    -- no event since the window opened: the last one is its state all along
    SELECT agent_id, ts, state, queues FROM agent_last WHERE ts < $lo::TIMESTAMPTZ
), active_before AS (
    -- the others' last event before the window and the queues they last reported before it
    SELECT e.agent_id, max({'ts': e.ts, 'state': e.state}) AS k,
           arg_max(e.queues, {'ts': e.ts, 'state': e.state}) FILTER (WHERE e.queues IS NOT NULL) AS queues
    FROM agent_events e SEMI JOIN (SELECT agent_id FROM agent_last WHERE ts >= $lo::TIMESTAMPTZ) a USING (agent_id)
    WHERE e.ts < $lo::TIMESTAMPTZ AND ($since::TIMESTAMPTZ IS NULL OR e.ts >= $since::TIMESTAMPTZ)
    GROUP BY e.agent_id
), ev AS (
    -- each agent's state (and queues) when the widest window opens, and every change inside it
    SELECT agent_id, ts, state, queues FROM idle
    UNION ALL
    SELECT b.agent_id, b.k.ts, b.k.state, coalesce(b.queues, CASE WHEN l.queues_ts < $lo::TIMESTAMPTZ THEN l.queues END)
    FROM active_before b JOIN agent_last l USING (agent_id)
    UNION ALL
    SELECT agent_id, ts, state, queues FROM agent_events WHERE ts >= $lo::TIMESTAMPTZ AND ts <= $wm
), seg AS (
    SELECT agent_id, state, ts AS started_at,
           coalesce(lead(ts) OVER (PARTITION BY agent_id ORDER BY ts, state), $wm) AS ended_at,
           last_value(queues IGNORE NULLS) OVER (PARTITION BY agent_id ORDER BY ts, state
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS queues
    FROM ev
), served AS (
    -- unnest in the select list, not a lateral join: DuckDB plans the lateral one as a
    -- delim join that cost more than the rest of this query together
    SELECT agent_id, state, started_at, ended_at, unnest(coalesce(queues, []::VARCHAR[])) AS queue
    FROM seg
    WHERE state IN ('ready', 'busy', 'wrap')
), clipped AS (
    SELECT s.queue, s.agent_id, w.width_s, s.state,
           cp_seconds_between(greatest(s.started_at, $wm - to_seconds(w.width_s)), s.ended_at) AS seconds
    FROM served s JOIN w ON s.ended_at > $wm - to_seconds(w.width_s)
), per_agent AS (
    SELECT queue, agent_id, width_s,
           coalesce(sum(cp_us(seconds)) FILTER (WHERE state IN ('busy', 'wrap')), 0) AS handle_us,
           coalesce(sum(cp_us(seconds)) FILTER (WHERE state = 'ready'), 0) AS ready_us
    FROM clipped GROUP BY ALL
)
SELECT queue, width_s::INTEGER AS width_s,
       cp_ratio(sum(handle_us) / 1e6, (sum(handle_us) + sum(ready_us)) / 1e6) AS occupancy
FROM per_agent GROUP BY ALL
ORDER BY ALL
