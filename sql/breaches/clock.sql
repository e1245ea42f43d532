-- Returns the watermark, the last breach evaluation point (NULL before the first), the earliest offered call and the earliest event time of the calls changed since the last evaluation (NULL: none).
SELECT (SELECT watermark FROM pipeline_state WHERE id = 1) AS watermark,
       (SELECT evaluated_to FROM breach_clock WHERE id = 1) AS evaluated_to,
       (SELECT min(offered_at) FROM call_state) AS first_offered_at,
       (SELECT since FROM calls_changed WHERE id = 1) AS changed_since
