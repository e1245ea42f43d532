-- Returns (_row, reason) for new call events that contradict their call's order: an outcome before the offer, an end before the answer, an offer after events stored earlier.
WITH keys AS (SELECT DISTINCT call_id, queue FROM new_calls),
stored AS (SELECT e.call_id, e.queue, e.event, e.ts FROM call_events e SEMI JOIN keys USING (call_id, queue)),
offers AS (
    SELECT call_id, queue, min(ts) AS ts FROM (
        SELECT call_id, queue, ts FROM stored WHERE event = 'offered'
        UNION ALL SELECT call_id, queue, ts FROM new_calls WHERE event = 'offered'
    ) GROUP BY ALL
),
answers AS (
    SELECT call_id, queue, min(ts) AS ts FROM (
        SELECT call_id, queue, ts FROM stored WHERE event = 'answered'
        UNION ALL SELECT call_id, queue, ts FROM new_calls WHERE event = 'answered'
    ) GROUP BY ALL
),
stored_later AS (SELECT call_id, queue, min(ts) AS ts FROM stored WHERE event <> 'offered' GROUP BY ALL)
SELECT n._row, n.event || ' before offered' AS reason
FROM new_calls n JOIN offers o USING (call_id, queue)
WHERE n.event <> 'offered' AND n.ts < o.ts
UNION ALL
SELECT n._row, 'ended before answered' AS reason
FROM new_calls n JOIN answers a USING (call_id, queue)
WHERE n.event = 'ended' AND n.ts < a.ts
UNION ALL
SELECT n._row, 'offered after the call''s stored ' || 'outcome' AS reason
FROM new_calls n JOIN stored_later s USING (call_id, queue)
WHERE n.event = 'offered' AND n.ts > s.ts
