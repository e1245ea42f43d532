-- Records the interval length and site time zone in use.
UPDATE pipeline_state SET interval_s = $interval_s, timezone = $timezone WHERE id = 1
