-- Returns (_row, reason) for new call events that contradict their call's order: an outcome before the offer, an end before the answer, an offer after events stored earlier.
-- What is stored of each call comes from batch_known (its call_state row: one time per event kind).
WITH offers AS (
    SELECT call_id, queue, min(ts) AS ts FROM (
        SELECT call_id, queue, offered_at AS ts FROM batch_known WHERE offered_at IS NOT NULL
        UNION ALL SELECT call_id, queue, ts FROM new_calls WHERE event = 'offered'
    ) GROUP BY ALL
),
answers AS (
    SELECT call_id, queue, min(ts) AS ts FROM (
        SELECT call_id, queue, answered_at AS ts FROM batch_known WHERE answered_at IS NOT NULL
        UNION ALL SELECT call_id, queue, ts FROM new_calls WHERE event = 'answered'
    ) GROUP BY ALL
),
-- least() skips NULLs: the first stored event that is not the offer
stored_later AS (
    SELECT call_id, queue, least(answered_at, abandoned_at, exited_at, ended_at, transferred_at) AS ts
    FROM batch_known
)
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
