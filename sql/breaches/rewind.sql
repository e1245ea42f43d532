-- Takes breach evaluation back to just before the point $point (the calls changed from there): forgets the breach changes made at that point or later, puts every breaches row they touched back to its state before it (or removes it if it opened since), lowers the evaluation clock to the point before, and takes the calls_changed mark.
CREATE OR REPLACE TEMP TABLE breach_rewound AS
SELECT DISTINCT queue, kpi, "window", opened_at FROM breach_log WHERE decided_at >= $point;
DELETE FROM breach_log WHERE decided_at >= $point;
DELETE FROM breaches USING breach_rewound r
WHERE breaches.queue = r.queue AND breaches.kpi = r.kpi
  AND breaches."window" = r."window" AND breaches.opened_at = r.opened_at;
INSERT INTO breaches (queue, kpi, "window", target, value, worst_value, opened_at, closed_at)
SELECT queue, kpi, "window", target, value, worst_value, opened_at, closed_at
FROM breach_log l SEMI JOIN breach_rewound r USING (queue, kpi, "window", opened_at)
QUALIFY row_number() OVER (PARTITION BY queue, kpi, "window", opened_at ORDER BY decided_at DESC) = 1;
UPDATE breach_clock SET evaluated_to = $point - to_seconds($step) WHERE id = 1 AND evaluated_to >= $point;
DELETE FROM calls_changed;
DROP TABLE breach_rewound;
