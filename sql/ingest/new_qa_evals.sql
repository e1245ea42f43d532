-- Returns the batch's QA evaluations whose key (call_id, agent_id) is not stored yet.
SELECT b.* FROM batch_qa b ANTI JOIN qa_evals e USING (call_id, agent_id)
