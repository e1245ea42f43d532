-- Marks the agent intervals of the batch's new QA evaluations as touched.
INSERT INTO touched_a SELECT agent_id, cp_bucket(ts, $iv) FROM new_qa
