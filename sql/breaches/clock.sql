-- Returns the watermark, the last breach evaluation point (NULL before the first) and the earliest event time of the calls changed since the last evaluation (NULL: none); read after every batch, so small tables only.
SELECT (SELECT watermark FROM pipeline_state WHERE id = 1) AS watermark,
       (SELECT evaluated_to FROM breach_clock WHERE id = 1) AS evaluated_to,
       (SELECT since FROM calls_changed WHERE id = 1) AS changed_since
