-- Creates the breach detector's own bookkeeping tables (idempotent): how far in event time breaches were evaluated, and since when each open breach has been back inside its target.
CREATE TABLE IF NOT EXISTS breach_clock (
    id           INTEGER PRIMARY KEY,
    evaluated_to TIMESTAMPTZ NOT NULL     -- the last evaluation point (a minute boundary of event time)
);

CREATE TABLE IF NOT EXISTS breach_recovery (
    queue     VARCHAR NOT NULL,
    kpi       VARCHAR NOT NULL,
    "window"  VARCHAR NOT NULL,
    opened_at TIMESTAMPTZ NOT NULL,       -- the open breach (breaches row) this belongs to
    ok_since  TIMESTAMPTZ NOT NULL,       -- first evaluation point of the current run inside target
    PRIMARY KEY (queue, kpi, "window", opened_at)
);
