-- Saves one breach: inserts or replaces its breaches row (closed_at NULL while open, worst_value kept current) and its recovery mark (ok_since, only while open and back inside target).
INSERT OR REPLACE INTO breaches (queue, kpi, "window", target, value, worst_value, opened_at, closed_at)
VALUES ($queue, $kpi, $window, $target, $value, $worst_value, $opened_at, $closed_at);
DELETE FROM breach_recovery
WHERE queue = $queue AND kpi = $kpi AND "window" = $window AND opened_at = $opened_at;
INSERT INTO breach_recovery (queue, kpi, "window", opened_at, ok_since)
SELECT $queue, $kpi, $window, $opened_at, $ok_since
WHERE $ok_since IS NOT NULL AND $closed_at IS NULL;
