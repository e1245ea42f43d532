-- Recomputes contact start and the caller's next contact for every call of the callers listed in touched_callers offered from $since on (the earliest they listed, NULL: all; earlier calls' next contacts fall outside every repeat window, so no KPI reads them), and marks the intervals of the rows that changed as touched.
CREATE OR REPLACE TEMP TABLE next_contact AS
WITH mine AS (
    -- every call of those callers, read once: the window below and the comparison with the
    -- stored values both use these rows
    -- bounded by $since (a value, so only the row groups of those days are read), not the
    -- callers' whole history: a batch's cost must not grow with the months stored
    SELECT call_id, queue, caller_key, offered_at, contact_started_at, next_contact_at
    FROM call_state SEMI JOIN touched_callers USING (caller_key)
    WHERE $since::TIMESTAMPTZ IS NULL OR offered_at >= $since::TIMESTAMPTZ
), contacts AS (
    SELECT caller_key, call_id, min(offered_at) AS started_at
    FROM mine
    WHERE offered_at IS NOT NULL
    GROUP BY ALL
)
SELECT c.call_id, c.queue, c.offered_at, n.started_at,
       n.next_at
FROM (
    SELECT caller_key, call_id, started_at,
           lead(started_at) OVER (PARTITION BY caller_key ORDER BY started_at, call_id) AS next_at
    FROM contacts
) n
JOIN mine c ON c.caller_key = n.caller_key AND c.call_id = n.call_id
WHERE c.contact_started_at IS DISTINCT FROM n.started_at OR c.next_contact_at IS DISTINCT FROM n.next_at;
UPDATE call_state
SET contact_started_at = n.started_at, next_contact_at = n.next_at
FROM next_contact n
WHERE call_state.call_id = n.call_id AND call_state.queue = n.queue;
INSERT INTO touched_q SELECT queue, cp_bucket(offered_at, $iv) FROM next_contact WHERE offered_at IS NOT NULL;
