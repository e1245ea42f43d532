-- Returns the watermark, the last breach evaluation point (NULL before the first) and the earliest offered call.
SELECT (SELECT watermark FROM pipeline_state WHERE id = 1) AS watermark,
       (SELECT evaluated_to FROM breach_clock WHERE id = 1) AS evaluated_to,
       (SELECT min(offered_at) FROM call_state) AS first_offered_at
