-- Returns per queue, for each window width in $widths (seconds) ending at $wm, the occupancy: (busy + wrap) / (busy + wrap + ready) time of the agents serving the queue (NULL without such time). Reads only the widest window's events plus each agent's last state and queues before it.
WITH w AS (
    SELECT unnest($widths::INTEGER[]) AS width_s
), bounds AS (
    SELECT $wm - to_seconds(max(width_s)) AS lo FROM w
), last_before AS (
    SELECT e.agent_id, max(e.ts) AS ts
    FROM agent_events e, bounds b WHERE e.ts < b.lo GROUP BY e.agent_id
), queues_before AS (
    SELECT e.agent_id, arg_max(e.queues, e.ts) AS queues
    FROM agent_events e, bounds b WHERE e.ts < b.lo AND e.queues IS NOT NULL GROUP BY e.agent_id
), ev AS (
    -- the state each agent was in when the widest window opened ...
    SELECT e.agent_id, e.ts, max(e.state) AS state, any_value(q.queues) AS queues
    FROM agent_events e
    JOIN last_before l ON l.agent_id = e.agent_id AND l.ts = e.ts
    LEFT JOIN queues_before q ON q.agent_id = e.agent_id
    GROUP BY e.agent_id, e.ts
    UNION ALL
    -- ... and every change inside it
    SELECT e.agent_id, e.ts, e.state, e.queues
    FROM agent_events e, bounds b WHERE e.ts >= b.lo AND e.ts <= $wm
), seg AS (
    SELECT agent_id, state, ts AS started_at,
           coalesce(lead(ts) OVER (PARTITION BY agent_id ORDER BY ts, state), $wm) AS ended_at,
           last_value(queues IGNORE NULLS) OVER (PARTITION BY agent_id ORDER BY ts, state
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS queues
    FROM ev
), served AS (
    SELECT seg.agent_id, seg.state, seg.started_at, seg.ended_at, q.queue
    FROM seg, unnest(coalesce(seg.queues, []::VARCHAR[])) AS q(queue)
    WHERE seg.state IN ('ready', 'busy', 'wrap')
), clipped AS (
    SELECT s.queue, s.agent_id, w.width_s, s.state,
           epoch(s.ended_at - greatest(s.started_at, $wm - to_seconds(w.width_s))) AS seconds
    FROM served s JOIN w ON s.ended_at > $wm - to_seconds(w.width_s)
), per_agent AS (
    SELECT queue, agent_id, width_s,
           coalesce(sum(seconds) FILTER (WHERE state IN ('busy', 'wrap')), 0) AS handle_s,
           coalesce(sum(seconds) FILTER (WHERE state = 'ready'), 0) AS ready_s
    FROM clipped GROUP BY ALL
)
SELECT queue, width_s::INTEGER AS width_s,
       cp_ratio(sum(handle_s), sum(handle_s) + sum(ready_s)) AS occupancy
FROM per_agent GROUP BY ALL
ORDER BY ALL
