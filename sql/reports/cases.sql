-- Returns the cases first offered in [$lo, $hi) (optionally in one $queue): case_id, queue, category, resolution_s, resolved_first_contact and times.
SELECT case_id, queue, category, first_offered_at, resolved_at, contacts, resolution_s, resolved_first_contact
FROM cases
WHERE first_offered_at >= $lo AND first_offered_at < $hi
  AND (CAST($queue AS VARCHAR) IS NULL OR queue = $queue)
ORDER BY case_id
