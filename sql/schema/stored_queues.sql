-- Returns the queues that have settings stored.
SELECT queue FROM queue_settings
