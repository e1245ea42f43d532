-- Creates the session's scratch table that lists the calls a batch touched (temporary: never stored; the intervals and callers it touched are listed in touched_q / touched_a / touched_callers, schema/tables.sql), and the store's temporary macros.
CREATE TEMP TABLE IF NOT EXISTS touched_calls (call_id VARCHAR, queue VARCHAR);

-- Each agent's last event in the agent events named `events` (agent_events, or a batch's),
-- as agent_last holds it: of several changes at one instant, the last in (ts, state) order
-- is the one that lasts; queues come from the last event that reported them (NULL: none did).
CREATE OR REPLACE TEMP MACRO last_agent_events(events) AS TABLE
SELECT agent_id,
       max(ts) AS ts,
       arg_max(state, (ts, state)) AS state,
       arg_max_null(reason, (ts, state)) AS reason,  -- arg_max would skip a NULL reason
       arg_max(queues, (ts, state)) FILTER (WHERE queues IS NOT NULL) AS queues,
       max(ts) FILTER (WHERE queues IS NOT NULL) AS queues_ts,
       arg_max(state, (ts, state)) FILTER (WHERE queues IS NOT NULL) AS queues_state
FROM query_table(events) GROUP BY agent_id;

-- call_state rows rebuilt from the stored events of the calls in touched_calls (the store's
-- scratch table): each event kind's time, the agent who answered (else ended, else any).
-- `lo`: no event of those calls is earlier (a bound that lets DuckDB skip old row groups).
CREATE OR REPLACE TEMP MACRO touched_call_state(lo) AS TABLE
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
       NULL::TIMESTAMPTZ AS contact_started_at,
       NULL::TIMESTAMPTZ AS next_contact_at
FROM call_events e SEMI JOIN touched_calls t USING (call_id, queue)
WHERE e.ts >= lo
GROUP BY e.call_id, e.queue;

-- (queue, agent, interval) of the calls in touched_calls as the relation named `state` (a
-- call_state-shaped table: call_state itself, or a batch's rows before and after) holds them.
CREATE OR REPLACE TEMP MACRO touched_call_intervals_in(state, iv) AS TABLE
SELECT s.queue, s.agent_id, cp_bucket(s.offered_at, iv) AS interval_start
FROM query_table(state) s SEMI JOIN touched_calls USING (call_id, queue)
WHERE s.offered_at IS NOT NULL;
