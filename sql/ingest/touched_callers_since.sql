-- Returns whether any caller is listed for the recompute of its contacts (touched_callers) and from which offer on (NULL: all their calls).
SELECT count(*) > 0 AS listed,
       CASE WHEN bool_or(since IS NULL) THEN NULL ELSE min(since) END AS since
FROM touched_callers
