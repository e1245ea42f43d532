-- Recomputes contact start and the caller's next contact for every call of the callers of touched_calls; returns (queue, offered_at) of the rows that changed.
UPDATE call_state
SET contact_started_at = n.started_at, next_contact_at = n.next_at
FROM (
    WITH callers AS (
        SELECT DISTINCT caller_key FROM call_state SEMI JOIN touched_calls USING (call_id, queue)
        WHERE caller_key IS NOT NULL
    ), contacts AS (
        SELECT caller_key, call_id, min(offered_at) AS started_at
        FROM call_state SEMI JOIN callers USING (caller_key)
        WHERE offered_at IS NOT NULL
        GROUP BY ALL
    )
    SELECT caller_key, call_id, started_at,
           lead(started_at) OVER (PARTITION BY caller_key ORDER BY started_at, call_id) AS next_at
    FROM contacts
) n
WHERE call_state.caller_key = n.caller_key AND call_state.call_id = n.call_id
  AND (call_state.contact_started_at IS DISTINCT FROM n.started_at
       OR call_state.next_contact_at IS DISTINCT FROM n.next_at)
RETURNING call_state.queue, call_state.offered_at
