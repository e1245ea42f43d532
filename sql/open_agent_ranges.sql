-- Inserts into touched_a the intervals between the old and new watermark of every agent whose state at the old watermark was open (not logged out).
INSERT INTO touched_a
WITH last AS (
    SELECT agent_id, arg_max(state, ts) AS state FROM agent_events WHERE ts <= $old_wm GROUP BY agent_id
)
SELECT agent_id, to_timestamp(unnest(range(
    CAST(floor(epoch($old_wm) / $iv) * $iv AS BIGINT),
    CAST(floor(epoch($new_wm) / $iv) * $iv AS BIGINT) + 1,
    CAST($iv AS BIGINT)))) AS interval_start
FROM last WHERE state <> 'logout'
