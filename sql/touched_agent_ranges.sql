-- Inserts into touched_a every interval of each agent in new_agents from its previous state change before the batch up to the watermark.
INSERT INTO touched_a
WITH b AS (SELECT agent_id, min(ts) AS lo FROM new_agents GROUP BY agent_id),
p AS (
    SELECT b.agent_id, coalesce(max(e.ts) FILTER (WHERE e.ts < b.lo), b.lo) AS lo
    FROM b LEFT JOIN agent_events e ON e.agent_id = b.agent_id
    GROUP BY b.agent_id, b.lo
)
SELECT agent_id, to_timestamp(unnest(range(
    CAST(floor(epoch(lo) / $iv) * $iv AS BIGINT),
    CAST(floor(epoch($wm) / $iv) * $iv AS BIGINT) + 1,
    CAST($iv AS BIGINT)))) AS interval_start
FROM p
