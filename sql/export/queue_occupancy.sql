-- Returns per queue, for each window width in $widths (seconds) ending at $wm, the occupancy: (busy + wrap) / (busy + wrap + ready) time of the agents serving the queue (NULL without such time). Reads only the widest window's events plus each agent's last state and queues before it.
WITH w AS (
    SELECT unnest($widths::INTEGER[]) AS width_s
), ev AS (
    -- each agent's state (and queues) when the widest window opens, and every change inside it
    SELECT agent_id, ts, state, queues FROM agent_events_from($wm - to_seconds(list_max($widths::INTEGER[])), $wm)
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
