-- Creates snapshot_info (one row: what this copy is and when it was taken) and records it; returns nothing.
CREATE OR REPLACE TABLE snapshot_info (
    kind        VARCHAR NOT NULL,     -- copy (the analysts') or backup
    taken_at    TIMESTAMPTZ NOT NULL, -- wall-clock time the copy was taken
    watermark   TIMESTAMPTZ,          -- newest event time in the copied data
    source_db   VARCHAR NOT NULL,     -- the database file it was copied from
    copy_ms     DOUBLE NOT NULL       -- how long the copy held the source
);
INSERT INTO snapshot_info
SELECT $kind, $taken_at, (SELECT watermark FROM pipeline_state WHERE id = 1), $source_db, $copy_ms
