-- Returns per queue the quality KPIs of the calls offered in the rolling window [$lo, $hi) (the wallboard's: its start and the watermark included): calls with quality and the share of poor ones (the quality_kpis macro).
SELECT queue, calls, poor_quality_ratio FROM quality_kpis($lo, $hi, NULL) ORDER BY queue
