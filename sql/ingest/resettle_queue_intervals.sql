-- Empties queue_interval and marks every call in call_state as touched: after a KPI setting
-- changed, queue KPIs are recomputed from call_state (settings-free facts retention keeps).
DELETE FROM queue_interval;
INSERT INTO touched_calls SELECT call_id, queue FROM call_state;
