-- Returns KPIs per queue for calls offered in the rolling window [$lo, $hi) (e.g. the 15 minutes before the watermark), from the calls view.
SELECT a.queue, a.offered, a.answered, a.abandoned, a.short_abandoned, a.exited, a.waiting,
       cp_service_level(s.sl_formula, a.answered_in_sl, a.abandoned_in_sl, a.offered, a.short_abandoned, a.answered) AS service_level,
       cp_ratio(a.answer_wait_s, a.answered) AS asa_s,
       cp_abandon_rate(a.abandoned, a.short_abandoned, a.offered) AS abandon_rate,
       cp_ratio(a.handle_s, a.handled) AS aht_s,
       a.max_wait_s
FROM queue_aggregates($lo, $hi, NULL) a
LEFT JOIN queue_settings s USING (queue)
ORDER BY a.queue
