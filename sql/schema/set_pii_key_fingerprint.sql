-- Records the fingerprint of the PII key, once: a database keeps the first key it was written with.
UPDATE pipeline_state SET pii_key_fingerprint = $fingerprint WHERE id = 1 AND pii_key_fingerprint IS NULL
