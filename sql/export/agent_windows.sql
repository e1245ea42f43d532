-- Returns per agent and window width in $widths (seconds) ending at $wm: handled (calls offered in the window that the agent handled), aht_s (mean handle_s of those, NULL without), ready_s / busy_s / wrap_s / not_ready_s (state time clipped to the window), occupancy ((busy + wrap) / (busy + wrap + ready), NULL without such time) and not_ready (list of {reason, seconds}, reason '' if none given); a row for each agent with state time or a call in the window. Reads only the widest window's agent events plus each agent's last events before it.
WITH w AS (
    SELECT unnest($widths::INTEGER[]) AS width_s
), bounds AS (
    SELECT $wm - to_seconds(max(width_s)) AS lo FROM w
), ev AS (
    -- each agent's state when the widest window opens, and every change inside it
    SELECT agent_id, ts, state, reason FROM agent_events_from((SELECT lo FROM bounds), $wm)
), seg AS (
    -- the same segments as the agent_states view: each state lasts until the agent's next event
    SELECT agent_id, state, coalesce(reason, '') AS reason, ts AS started_at,
           coalesce(lead(ts) OVER (PARTITION BY agent_id ORDER BY ts, state), $wm) AS ended_at
    FROM ev
), clipped AS (
    SELECT s.agent_id, w.width_s, s.state, s.reason,
           cp_seconds_between(greatest(s.started_at, $wm - to_seconds(w.width_s)), least(s.ended_at, $wm)) AS seconds
    FROM seg s JOIN w ON s.ended_at > $wm - to_seconds(w.width_s)
    WHERE s.state IN ('ready', 'busy', 'wrap', 'not_ready') AND s.ended_at > s.started_at
), st AS (
    SELECT agent_id, width_s,
           coalesce(sum(cp_us(seconds)) FILTER (WHERE state = 'ready'), 0) / 1e6 AS ready_s,
           coalesce(sum(cp_us(seconds)) FILTER (WHERE state = 'busy'), 0) / 1e6 AS busy_s,
           coalesce(sum(cp_us(seconds)) FILTER (WHERE state = 'wrap'), 0) / 1e6 AS wrap_s,
           coalesce(sum(cp_us(seconds)) FILTER (WHERE state = 'not_ready'), 0) / 1e6 AS not_ready_s
    FROM clipped GROUP BY ALL
), nr AS (
    SELECT agent_id, width_s, reason, sum(cp_us(seconds)) / 1e6 AS seconds
    FROM clipped WHERE state = 'not_ready' GROUP BY ALL
), nr_list AS (
    SELECT agent_id, width_s, list({'reason': reason, 'seconds': seconds} ORDER BY reason) AS not_ready
    FROM nr GROUP BY ALL
), handled AS (
    -- calls belong to the window they were offered in (rolling windows include both ends)
    SELECT c.agent_id, w.width_s, count(c.handle_s) AS handled, coalesce(sum(cp_us(c.handle_s)), 0) / 1e6 AS handle_s
    FROM calls c JOIN w ON c.offered_at >= $wm - to_seconds(w.width_s)
    WHERE c.agent_id IS NOT NULL AND c.offered_at >= (SELECT lo FROM bounds) AND c.offered_at <= $wm
    GROUP BY ALL
)
SELECT agent_id, width_s::INTEGER AS width_s,
       coalesce(h.handled, 0)::BIGINT AS handled,
       cp_ratio(h.handle_s, h.handled) AS aht_s,
       coalesce(st.ready_s, 0) AS ready_s, coalesce(st.busy_s, 0) AS busy_s,
       coalesce(st.wrap_s, 0) AS wrap_s, coalesce(st.not_ready_s, 0) AS not_ready_s,
       cp_ratio(st.busy_s + st.wrap_s, st.busy_s + st.wrap_s + st.ready_s) AS occupancy,
       coalesce(n.not_ready, []) AS not_ready
FROM st
FULL JOIN handled h USING (agent_id, width_s)
LEFT JOIN nr_list n USING (agent_id, width_s)
ORDER BY agent_id, width_s
