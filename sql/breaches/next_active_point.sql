-- Returns the first evaluation point (epoch seconds, a multiple of $step) at or after $from_s at which a stored call can give a KPI a value: a call offered at or before it and less than the widest window ($width_s) or its queue's orphan_after before it. NULL: no such point (no call offered after $from_s minus that span).
SELECT min(greatest($from_s, ceil(epoch(c.offered_at) / $step) * $step))::BIGINT AS point
FROM call_state c
JOIN queue_settings s USING (queue)
WHERE c.offered_at IS NOT NULL
  AND epoch(c.offered_at) + greatest($width_s, s.orphan_after_s) > $from_s
