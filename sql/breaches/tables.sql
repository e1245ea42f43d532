-- Creates the breach detector's own bookkeeping tables (idempotent): how far in event time breaches were evaluated, and the log of every change to a breach at the evaluation point that made it (from which breaches rows and the open breaches are re-derived when evaluation is taken back).
CREATE TABLE IF NOT EXISTS breach_clock (
    id           INTEGER PRIMARY KEY,
    evaluated_to TIMESTAMPTZ NOT NULL     -- the last evaluation point (a minute boundary of event time)
);

CREATE TABLE IF NOT EXISTS breach_log (
    decided_at  TIMESTAMPTZ NOT NULL,     -- the evaluation point that changed the breach
    queue       VARCHAR NOT NULL,
    kpi         VARCHAR NOT NULL,
    "window"    VARCHAR NOT NULL,
    opened_at   TIMESTAMPTZ NOT NULL,     -- the breach (breaches row) this is a state of
    target      DOUBLE NOT NULL,
    value       DOUBLE,
    worst_value DOUBLE,
    closed_at   TIMESTAMPTZ,
    ok_since    TIMESTAMPTZ,              -- first point of the current run inside target, while open
    PRIMARY KEY (queue, kpi, "window", opened_at, decided_at)
);

-- A database from before breach_log has breaches without the states they went through:
-- they are decided again from the stored calls (breaches are a function of the data).
DROP TABLE IF EXISTS breach_recovery;
DELETE FROM breaches WHERE NOT EXISTS (SELECT 1 FROM breach_log);
DELETE FROM breach_clock WHERE NOT EXISTS (SELECT 1 FROM breach_log);
