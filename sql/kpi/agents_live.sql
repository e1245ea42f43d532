-- Returns agents per queue, state and not-ready reason now (the last state of each agent not logged out), and state_s: their seconds in that state so far, summed, as of the watermark.
WITH current AS (
    -- unnest in the select list, not a lateral join: DuckDB plans the lateral one as a
    -- delim join that costs more than the rest of this query together
    SELECT unnest(coalesce(queues, ['']::VARCHAR[])) AS queue, state, reason, duration_s
    FROM agent_current WHERE state <> 'logout'
)
SELECT queue, state, coalesce(reason, '') AS reason, count(*) AS agents, sum(cp_us(duration_s)) / 1e6 AS state_s
FROM current
GROUP BY ALL
ORDER BY ALL
