-- Adds the time from the old to the new watermark to the agent_interval rows of every agent whose state at the old watermark still lasts, for the intervals nobody recomputes (those in touched_a are rebuilt from events).
-- Without this, every logged-in agent's current interval would be recomputed from its
-- events at every batch, whether or not the agent did anything. The result is the same:
-- an agent without a new event up to an interval's end kept, in that interval, the state
-- it had at the old watermark, so that segment just grows by the watermark's advance
-- (clipped to the interval); any other change puts the interval in touched_a. Times are
-- added in whole microseconds (cp_seconds_plus_us), as recompute_agent_intervals sums
-- them, so both give the very same DOUBLE.
MERGE INTO agent_interval AS t
USING (
    -- agent_last as the batch found it (update_agent_last runs after this): each agent's
    -- state at the old watermark. An agent with a new event at or before the old watermark
    -- has all these intervals in touched_a.
    WITH ext AS (
        SELECT agent_id, state, unnest(cp_buckets($old_wm, $new_wm, $iv)) AS interval_start
        FROM agent_last WHERE state IN ('ready', 'busy', 'wrap', 'not_ready')
    ),
    grown AS (
        SELECT agent_id, interval_start, state,
               epoch_us(least($new_wm, interval_start + to_seconds($iv)))
                 - epoch_us(greatest($old_wm, interval_start)) AS us
        FROM ext ANTI JOIN touched_a USING (agent_id, interval_start)
    )
    SELECT * FROM grown WHERE us > 0
) AS e
ON t.agent_id = e.agent_id AND t.interval_start = e.interval_start
WHEN MATCHED THEN UPDATE SET
    ready_s     = CASE WHEN e.state = 'ready'     THEN cp_seconds_plus_us(t.ready_s, e.us)     ELSE t.ready_s END,
    busy_s      = CASE WHEN e.state = 'busy'      THEN cp_seconds_plus_us(t.busy_s, e.us)      ELSE t.busy_s END,
    wrap_s      = CASE WHEN e.state = 'wrap'      THEN cp_seconds_plus_us(t.wrap_s, e.us)      ELSE t.wrap_s END,
    not_ready_s = CASE WHEN e.state = 'not_ready' THEN cp_seconds_plus_us(t.not_ready_s, e.us) ELSE t.not_ready_s END
WHEN NOT MATCHED THEN INSERT VALUES (
    e.agent_id, e.interval_start, 0, 0,
    CASE WHEN e.state = 'ready'     THEN e.us / 1e6 ELSE 0 END,
    CASE WHEN e.state = 'busy'      THEN e.us / 1e6 ELSE 0 END,
    CASE WHEN e.state = 'wrap'      THEN e.us / 1e6 ELSE 0 END,
    CASE WHEN e.state = 'not_ready' THEN e.us / 1e6 ELSE 0 END,
    0, 0
);
