-- Returns the batch's call events whose key (call_id, queue, event) is not stored yet.
-- A kind is stored for a call when its time in call_state (batch_known: the batch's calls) is set.
SELECT b.* FROM batch_calls b LEFT JOIN batch_known k USING (call_id, queue)
WHERE CASE b.event
          WHEN 'offered' THEN k.offered_at
          WHEN 'answered' THEN k.answered_at
          WHEN 'abandoned' THEN k.abandoned_at
          WHEN 'exited' THEN k.exited_at
          WHEN 'ended' THEN k.ended_at
          WHEN 'transferred' THEN k.transferred_at
      END IS NULL
