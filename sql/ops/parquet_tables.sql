-- Creates the tables of the Parquet export (idempotent): each export, the version of each finished row it wrote, the worker id.

-- One row per export (seq = the file name's number in every partition it wrote), written
-- in the transaction that marks its rows, after its files were renamed into place.
CREATE TABLE IF NOT EXISTS parquet_exports (
    seq         BIGINT PRIMARY KEY,
    exported_at TIMESTAMPTZ NOT NULL,
    watermark   TIMESTAMPTZ NOT NULL,   -- the worker's watermark: the rows' version across workers
    frontier    TIMESTAMPTZ NOT NULL,   -- rows finished at or before this were candidates
    rows        BIGINT NOT NULL
);

-- The content hash each finished row was last exported with (tbl, key), so an export
-- writes only rows that are new or changed (a late event). Rows older than the lookback
-- are dropped from here: nothing re-examines them.
CREATE TABLE IF NOT EXISTS parquet_marks (
    tbl      VARCHAR NOT NULL,
    key      VARCHAR NOT NULL,
    row_hash UBIGINT NOT NULL,
    row_time TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tbl, key)
);

-- The worker id this database's exports are filed under (one row): the configured one, or
-- one made up once (host name and a random suffix), so two writers never share a folder.
CREATE TABLE IF NOT EXISTS parquet_identity (
    id     INTEGER PRIMARY KEY,
    worker VARCHAR NOT NULL
);
