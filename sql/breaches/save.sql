-- Saves the breach changes in the registered relation breach_changes (one row per changed breach and evaluation point decided_at): logs each, and inserts or replaces the breaches rows with their latest state (closed_at NULL while open, worst_value kept current).
INSERT INTO breach_log (decided_at, queue, kpi, "window", opened_at, target, value, worst_value, closed_at, ok_since)
SELECT decided_at, queue, kpi, "window", opened_at, target, value, worst_value, closed_at, ok_since FROM breach_changes;
INSERT OR REPLACE INTO breaches (queue, kpi, "window", target, value, worst_value, opened_at, closed_at)
SELECT queue, kpi, "window", target, value, worst_value, opened_at, closed_at FROM breach_changes
QUALIFY row_number() OVER (PARTITION BY queue, kpi, "window", opened_at ORDER BY decided_at DESC) = 1;
