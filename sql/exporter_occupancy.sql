-- Returns per queue (agent_id NULL) and, with $per_agent, per agent and queue, for each window width in $widths (seconds) ending at $wm, the occupancy: (busy + wrap) / (busy + wrap + ready) time of the agents serving the queue (NULL without such time).
WITH w AS (
    SELECT unnest($widths::INTEGER[]) AS width_s
), seg AS (
    SELECT a.agent_id, a.state, a.started_at, least(coalesce(a.ended_at, $wm), $wm) AS ended_at, q.queue
    FROM agent_states a, unnest(coalesce(a.queues, []::VARCHAR[])) AS q(queue)
    WHERE a.state IN ('ready', 'busy', 'wrap')
      AND a.started_at < $wm
      AND coalesce(a.ended_at, $wm) > $wm - to_seconds((SELECT max(width_s) FROM w))
), clipped AS (
    SELECT seg.queue, seg.agent_id, w.width_s, seg.state,
           epoch(seg.ended_at - greatest(seg.started_at, $wm - to_seconds(w.width_s))) AS seconds
    FROM seg JOIN w ON seg.ended_at > $wm - to_seconds(w.width_s)
), per_agent AS (
    SELECT queue, agent_id, width_s,
           coalesce(sum(seconds) FILTER (WHERE state IN ('busy', 'wrap')), 0) AS handle_s,
           coalesce(sum(seconds) FILTER (WHERE state = 'ready'), 0) AS ready_s
    FROM clipped GROUP BY ALL
)
SELECT queue, NULL::VARCHAR AS agent_id, width_s::INTEGER AS width_s,
       cp_ratio(sum(handle_s), sum(handle_s) + sum(ready_s)) AS occupancy
FROM per_agent GROUP BY ALL
UNION ALL
SELECT queue, agent_id, width_s::INTEGER AS width_s, cp_ratio(handle_s, handle_s + ready_s) AS occupancy
FROM per_agent WHERE $per_agent
ORDER BY ALL
