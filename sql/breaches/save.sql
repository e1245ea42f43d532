-- Saves the breaches in the registered relation breach_changes (one row per changed breach): inserts or replaces their breaches rows (closed_at NULL while open, worst_value kept current) and their recovery marks (ok_since, kept only while open and back inside target).
INSERT OR REPLACE INTO breaches (queue, kpi, "window", target, value, worst_value, opened_at, closed_at)
SELECT queue, kpi, "window", target, value, worst_value, opened_at, closed_at FROM breach_changes;
DELETE FROM breach_recovery USING breach_changes c
WHERE breach_recovery.queue = c.queue AND breach_recovery.kpi = c.kpi
  AND breach_recovery."window" = c."window" AND breach_recovery.opened_at = c.opened_at;
INSERT INTO breach_recovery (queue, kpi, "window", opened_at, ok_since)
SELECT queue, kpi, "window", opened_at, ok_since FROM breach_changes
WHERE ok_since IS NOT NULL AND closed_at IS NULL;
