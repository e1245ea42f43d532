-- Returns per agent the QA evaluations made in [$wm - $qa_s seconds, $wm] (evaluation time): how many, and their mean score (0-100).
SELECT agent_id, count(*) AS evaluations, sum(cp_us(score)) / 1e6 / count(*) AS qa_score
FROM qa_evals
WHERE ts >= $wm - to_seconds($qa_s) AND ts <= $wm
GROUP BY agent_id
ORDER BY agent_id
