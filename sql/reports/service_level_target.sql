-- Returns the lowest service-level target of any queue (the target line of the HTML report's chart).
SELECT min(target_service_level) AS target_service_level FROM queue_settings
