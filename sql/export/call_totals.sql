-- Returns per known queue the stored call counters (pipeline/core/counters.py: counted as each batch decided them, so they never go down): offered, answered, abandoned, answered within the service-level threshold in force when counted, and the sum of answered waits in seconds.
SELECT s.queue,
       coalesce(q.offered, 0) AS offered,
       coalesce(q.answered, 0) AS answered,
       coalesce(q.abandoned, 0) AS abandoned,
       coalesce(q.answered_in_sl, 0) AS answered_in_sl,
       coalesce(q.answer_wait_us, 0) / 1e6 AS answer_wait_s
FROM queue_settings s
LEFT JOIN queue_counters q USING (queue)
ORDER BY s.queue
