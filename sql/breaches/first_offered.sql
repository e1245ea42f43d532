-- Returns the earliest offered call (NULL: none), where breach evaluation starts; read only before the first evaluation (it reads every stored call).
SELECT min(offered_at) AS first_offered_at FROM call_state
