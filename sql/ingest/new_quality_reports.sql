-- Returns the batch's quality records whose key (call_id, leg, direction) is not stored yet.
SELECT b.* FROM batch_quality b ANTI JOIN quality_reports q USING (call_id, leg, direction)
