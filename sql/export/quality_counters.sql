-- Returns per known queue the stored quality counters (they never go down): reports counted, poor reports, MOS count and sum, jitter count and sum in seconds, and the histogram buckets as a list of {measure, le, reports}.
SELECT s.queue,
       coalesce(q.reports, 0) AS reports,
       coalesce(q.poor, 0) AS poor,
       coalesce(q.mos_count, 0) AS mos_count,
       coalesce(q.mos_sum, 0) AS mos_sum,
       coalesce(q.jitter_count, 0) AS jitter_count,
       coalesce(q.jitter_sum_s, 0) AS jitter_sum_s,
       coalesce((SELECT list({'measure': b.measure, 'le': b.le, 'reports': b.reports})
                 FROM quality_buckets b WHERE b.queue = s.queue), []) AS buckets
FROM queue_settings s
LEFT JOIN quality_counters q USING (queue)
ORDER BY s.queue
