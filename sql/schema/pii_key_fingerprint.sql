-- Returns the fingerprint of the PII key the database was written with (NULL: none recorded yet).
SELECT pii_key_fingerprint FROM pipeline_state WHERE id = 1
