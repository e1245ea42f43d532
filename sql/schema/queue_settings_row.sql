-- Returns the stored settings row of one queue (no row for a new queue).
SELECT * FROM queue_settings WHERE queue = $queue
