-- Writes one queue's KPI settings and targets (global defaults applied).
INSERT OR REPLACE INTO queue_settings VALUES (
    $queue, $sl_threshold_s, $sl_formula, $short_abandon_s, $repeat_window_s, $min_calls,
    $orphan_after_s, $target_service_level, $target_abandon_rate, $target_asa_s, $target_oldest_wait_s,
    $poor_mos, $poor_loss_pct, $poor_jitter_ms, $target_poor_quality_ratio
)
