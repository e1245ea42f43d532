-- Rebuilds the call_state rows of the calls in touched_calls from their stored events.
DELETE FROM call_state USING touched_calls t
WHERE call_state.call_id = t.call_id AND call_state.queue = t.queue;
INSERT INTO call_state
SELECT e.call_id, e.queue,
       max(e.caller_key) AS caller_key,
       max(e.caller_masked) AS caller_masked,
       coalesce(max(e.agent_id) FILTER (WHERE e.event = 'answered'),
                max(e.agent_id) FILTER (WHERE e.event = 'ended'),
                max(e.agent_id)) AS agent_id,
       min(e.ts) FILTER (WHERE e.event = 'offered') AS offered_at,
       min(e.ts) FILTER (WHERE e.event = 'answered') AS answered_at,
       min(e.ts) FILTER (WHERE e.event = 'abandoned') AS abandoned_at,
       min(e.ts) FILTER (WHERE e.event = 'exited') AS exited_at,
       min(e.ts) FILTER (WHERE e.event = 'ended') AS ended_at,
       min(e.ts) FILTER (WHERE e.event = 'transferred') AS transferred_at,
       max(e.talk_s) FILTER (WHERE e.event = 'ended') AS talk_s,
       max(e.hold_s) FILTER (WHERE e.event = 'ended') AS hold_s,
       max(e.wrap_s) FILTER (WHERE e.event = 'ended') AS wrap_s,
       max(e.case_id) AS case_id,
       max(e.category) AS category,
       bool_or(e.resolved) AS resolved,
       NULL AS contact_started_at,
       NULL AS next_contact_at
FROM call_events e SEMI JOIN touched_calls t USING (call_id, queue)
GROUP BY e.call_id, e.queue;
