-- Returns per queue and bucket bound (seconds) the stored count of answered calls that waited at most that long (cumulative histogram buckets; the +Inf bucket is the answered total of export/call_totals).
SELECT queue, le, calls FROM queue_wait_buckets ORDER BY ALL
