-- Records the last breach evaluation point.
INSERT OR REPLACE INTO breach_clock (id, evaluated_to) VALUES (1, $evaluated_to)
