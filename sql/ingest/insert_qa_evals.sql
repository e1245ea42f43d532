-- Stores the batch's new QA evaluations (registered as _insert_frame, columns matched by name); returns nothing.
INSERT INTO qa_evals BY NAME SELECT * FROM _insert_frame
