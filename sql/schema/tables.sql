-- Creates every table callpulse stores (idempotent); views and macros are in schema/views.sql.

-- Raw events, one row per event key; duplicates never enter.
CREATE TABLE IF NOT EXISTS call_events (
    call_id       VARCHAR NOT NULL,
    queue         VARCHAR NOT NULL,
    event         VARCHAR NOT NULL,   -- offered answered abandoned exited ended transferred
    ts            TIMESTAMPTZ NOT NULL,
    agent_id      VARCHAR,
    caller_key    VARCHAR,            -- HMAC-SHA256 of the caller number, never the number
    caller_masked VARCHAR,            -- e.g. +86*********01, for wallboards
    talk_s        DOUBLE,
    hold_s        DOUBLE,
    wrap_s        DOUBLE,
    case_id       VARCHAR,
    category      VARCHAR,
    resolved      BOOLEAN,
    source        VARCHAR
    -- key (call_id, queue, event): duplicates are filtered out before insert
    -- (pipeline/call_order.py); a primary-key index would double the write cost
);

CREATE TABLE IF NOT EXISTS agent_events (
    agent_id VARCHAR NOT NULL,
    ts       TIMESTAMPTZ NOT NULL,
    state    VARCHAR NOT NULL,        -- login logout ready not_ready busy wrap
    reason   VARCHAR,
    queues   VARCHAR[],
    source   VARCHAR
    -- key (agent_id, ts, state), enforced the same way
);

-- Each agent's last event in (ts, state) order: its state at the watermark, kept per batch
-- so that growing every logged-in agent's current interval never scans agent_events, and
-- the boards read each agent's current state without scanning them either. queues: from
-- the agent's last event that reported queues ((queues_ts, queues_state) is that event).
-- Retention keeps each agent's last event, so this agrees with agent_events; it is
-- refilled from them at every open (sql/ingest/refill_agent_last.sql).
CREATE TABLE IF NOT EXISTS agent_last (
    agent_id     VARCHAR NOT NULL,
    ts           TIMESTAMPTZ NOT NULL,
    state        VARCHAR NOT NULL,
    reason       VARCHAR,
    queues       VARCHAR[],
    queues_ts    TIMESTAMPTZ,
    queues_state VARCHAR
);
-- A database from before agent_last held reason and queues (the refill fills them).
ALTER TABLE agent_last ADD COLUMN IF NOT EXISTS reason VARCHAR;
ALTER TABLE agent_last ADD COLUMN IF NOT EXISTS queues VARCHAR[];
ALTER TABLE agent_last ADD COLUMN IF NOT EXISTS queues_ts TIMESTAMPTZ;
ALTER TABLE agent_last ADD COLUMN IF NOT EXISTS queues_state VARCHAR;

CREATE TABLE IF NOT EXISTS qa_evals (
    call_id   VARCHAR NOT NULL,
    agent_id  VARCHAR NOT NULL,
    score     DOUBLE NOT NULL,
    ts        TIMESTAMPTZ NOT NULL,
    evaluator VARCHAR,
    source    VARCHAR
    -- key (call_id, agent_id), enforced the same way
);

-- Media quality of one call leg and direction (a `quality` record), one row per key
-- (call_id, leg, direction), first wins: how the call sounded, in normalised units.
-- Kept whole by retention: the call_quality view needs them as call_state is kept.
CREATE TABLE IF NOT EXISTS quality_reports (
    call_id           VARCHAR NOT NULL,
    leg               VARCHAR NOT NULL,
    direction         VARCHAR NOT NULL,   -- in: media the phone system received; out: it sent
    ts                TIMESTAMPTZ NOT NULL,
    mos               DOUBLE,             -- 1..5
    r_factor          DOUBLE,             -- 0..100 (ITU-T G.107 R)
    jitter_ms         DOUBLE,
    loss_pct          DOUBLE,             -- 0..100
    rtt_ms            DOUBLE,
    vendor_score      DOUBLE,             -- a vendor's own score (e.g. Asterisk MES 0..100), never a MOS
    vendor_score_kind VARCHAR,
    trunk             VARCHAR,
    tags              VARCHAR[],
    source            VARCHAR
);
-- The quality records the counters do not hold yet because their call's offer is not stored
-- (sql/ingest/add_quality_counters.sql): a record is counted once, in the batch where both it
-- and its call's offer are stored. Kept small (a record waits here only for its call), so a
-- batch never scans quality_reports to find what to count.
CREATE TABLE IF NOT EXISTS quality_pending (
    call_id   VARCHAR NOT NULL,
    leg       VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,
    mos       DOUBLE,
    jitter_ms DOUBLE,
    loss_pct  DOUBLE
);

CREATE TABLE IF NOT EXISTS dead_letters (
    source      VARCHAR NOT NULL,
    position    VARCHAR,
    reason      VARCHAR NOT NULL,
    raw         VARCHAR,              -- caller numbers hashed or masked, never in the clear
    received_at TIMESTAMPTZ NOT NULL
);

-- How far each source got, written in the same transaction as the rows it produced.
CREATE TABLE IF NOT EXISTS source_offsets (
    source     VARCHAR NOT NULL,
    partition  INTEGER NOT NULL,
    "offset"   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, partition)
);
-- The partition's high watermark (next offset to be written) the worker knew when it fetched
-- the batch: high_watermark - offset - 1 is the lag the exporter shows.
ALTER TABLE source_offsets ADD COLUMN IF NOT EXISTS high_watermark BIGINT;

-- One row: the watermark (newest event time seen) and the interval length in use.
CREATE TABLE IF NOT EXISTS pipeline_state (
    id         INTEGER PRIMARY KEY,
    watermark  TIMESTAMPTZ,
    interval_s INTEGER NOT NULL,
    timezone   VARCHAR NOT NULL
);
-- A keyed hash of the PII key the callers were hashed with (never the key): another key
-- would give the same caller another caller_key, breaking repeat-contact matching.
ALTER TABLE pipeline_state ADD COLUMN IF NOT EXISTS pii_key_fingerprint VARCHAR;

-- The earliest event time of the call events stored since the breach evaluation last
-- took it (no row: none since). Written in each batch's own transaction, so a crash
-- between a batch and the evaluation loses no change: breaches are re-decided from it.
CREATE TABLE IF NOT EXISTS calls_changed (
    id    INTEGER PRIMARY KEY,
    since TIMESTAMPTZ NOT NULL
);

-- KPI settings per queue (global defaults applied), written from the config.
CREATE TABLE IF NOT EXISTS queue_settings (
    queue                 VARCHAR PRIMARY KEY,
    sl_threshold_s        DOUBLE NOT NULL,
    sl_formula            VARCHAR NOT NULL,
    short_abandon_s       DOUBLE NOT NULL,
    repeat_window_s       DOUBLE NOT NULL,
    min_calls             INTEGER NOT NULL,
    orphan_after_s        DOUBLE NOT NULL,
    target_service_level  DOUBLE NOT NULL,
    target_abandon_rate   DOUBLE NOT NULL,
    target_asa_s          DOUBLE NOT NULL,
    target_oldest_wait_s  DOUBLE NOT NULL
);
-- When a call sounded poor (config [defaults.quality]); read by the call_quality view only,
-- so a change needs no recompute. Added after the first release: older files gain them here.
ALTER TABLE queue_settings ADD COLUMN IF NOT EXISTS poor_mos DOUBLE DEFAULT 3.5;
ALTER TABLE queue_settings ADD COLUMN IF NOT EXISTS poor_loss_pct DOUBLE DEFAULT 1.0;
ALTER TABLE queue_settings ADD COLUMN IF NOT EXISTS poor_jitter_ms DOUBLE DEFAULT 30.0;
ALTER TABLE queue_settings ADD COLUMN IF NOT EXISTS target_poor_quality_ratio DOUBLE DEFAULT 0.10;

-- Materialized state of each call in each queue (one row per call_id and queue),
-- rebuilt from call_events for the calls a batch touches.
CREATE TABLE IF NOT EXISTS call_state (
    call_id            VARCHAR NOT NULL,
    queue              VARCHAR NOT NULL,
    caller_key         VARCHAR,
    caller_masked      VARCHAR,
    agent_id           VARCHAR,
    offered_at         TIMESTAMPTZ,
    answered_at        TIMESTAMPTZ,
    abandoned_at       TIMESTAMPTZ,
    exited_at          TIMESTAMPTZ,
    ended_at           TIMESTAMPTZ,
    transferred_at     TIMESTAMPTZ,
    talk_s             DOUBLE,
    hold_s             DOUBLE,
    wrap_s             DOUBLE,
    case_id            VARCHAR,
    category           VARCHAR,
    resolved           BOOLEAN,
    contact_started_at TIMESTAMPTZ,   -- first offer of this call_id in any queue
    next_contact_at    TIMESTAMPTZ    -- start of the same caller's next call
);

-- Additive per-queue interval aggregates, maintained for the intervals a batch touches.
CREATE TABLE IF NOT EXISTS queue_interval (
    queue            VARCHAR NOT NULL,
    interval_start   TIMESTAMPTZ NOT NULL,
    offered          BIGINT NOT NULL,
    answered         BIGINT NOT NULL,
    abandoned        BIGINT NOT NULL,
    short_abandoned  BIGINT NOT NULL,
    exited           BIGINT NOT NULL,
    waiting          BIGINT NOT NULL,
    answered_in_sl   BIGINT NOT NULL,
    abandoned_in_sl  BIGINT NOT NULL,
    answer_wait_s    DOUBLE NOT NULL,  -- sum of waits of answered calls
    handled          BIGINT NOT NULL,
    handle_s         DOUBLE NOT NULL,  -- sum of talk + hold + wrap of handled calls
    transferred      BIGINT NOT NULL,
    max_wait_s       DOUBLE,
    repeat_eligible  BIGINT NOT NULL,  -- answered calls with a known caller
    repeated         BIGINT NOT NULL
);

-- Additive per-agent interval aggregates.
CREATE TABLE IF NOT EXISTS agent_interval (
    agent_id       VARCHAR NOT NULL,
    interval_start TIMESTAMPTZ NOT NULL,
    handled        BIGINT NOT NULL,
    handle_s       DOUBLE NOT NULL,
    ready_s        DOUBLE NOT NULL,
    busy_s         DOUBLE NOT NULL,
    wrap_s         DOUBLE NOT NULL,
    not_ready_s    DOUBLE NOT NULL,
    qa_count       BIGINT NOT NULL,
    qa_sum         DOUBLE NOT NULL
);

-- Threshold breaches, opened and closed in event time.
CREATE TABLE IF NOT EXISTS breaches (
    queue       VARCHAR NOT NULL,
    kpi         VARCHAR NOT NULL,
    "window"    VARCHAR NOT NULL,
    target      DOUBLE NOT NULL,
    value       DOUBLE,               -- value when opened
    worst_value DOUBLE,
    opened_at   TIMESTAMPTZ NOT NULL,
    closed_at   TIMESTAMPTZ,
    PRIMARY KEY (queue, kpi, "window", opened_at)
);

-- Exported counters (pipeline/core/counters.py): counts as each batch decided them, never
-- recounted, so they only grow (a threshold change, retention or a restart leaves them).
CREATE TABLE IF NOT EXISTS queue_counters (
    queue          VARCHAR PRIMARY KEY,
    offered        BIGINT NOT NULL,
    answered       BIGINT NOT NULL,
    abandoned      BIGINT NOT NULL,
    answered_in_sl BIGINT NOT NULL,   -- within the queue's threshold when the answer was counted
    answer_wait_us BIGINT NOT NULL    -- sum of answered calls' waits, microseconds
);

-- Answered calls per queue that waited at most le seconds (cumulative histogram buckets);
-- every bound once used stays.
CREATE TABLE IF NOT EXISTS queue_wait_buckets (
    queue VARCHAR NOT NULL,
    le    DOUBLE NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (queue, le)
);

-- Quality reports per queue (the first queue their call was offered to), counted once each
-- by the batch that stored the later of the report and the call's offer, poor by the
-- queue's thresholds then in force; with MOS and jitter sums for the histograms.
CREATE TABLE IF NOT EXISTS quality_counters (
    queue        VARCHAR PRIMARY KEY,
    reports      BIGINT NOT NULL,
    poor         BIGINT NOT NULL,
    mos_count    BIGINT NOT NULL,
    mos_sum      DOUBLE NOT NULL,
    jitter_count BIGINT NOT NULL,
    jitter_sum_s DOUBLE NOT NULL
);

-- Quality reports per queue whose MOS (measure 'mos') or jitter in seconds ('jitter_s') is
-- at most le: the cumulative buckets of the two histograms.
CREATE TABLE IF NOT EXISTS quality_buckets (
    queue   VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    le      DOUBLE NOT NULL,
    reports BIGINT NOT NULL,
    PRIMARY KEY (queue, measure, le)
);

-- Records stored, ignored as duplicates and dead-lettered, by source kind (and reason label).
CREATE TABLE IF NOT EXISTS pipeline_counters (
    metric VARCHAR NOT NULL,          -- ingested | duplicates | dead_letters
    source VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,          -- '' but for dead_letters
    value  BIGINT NOT NULL,
    PRIMARY KEY (metric, source, reason)
);

-- The Kafka partitions this database's worker was last assigned, with the consumer group's
-- generation (it grows with every rebalance of the group): in a group sharing queues
-- ([kafka] route_by_queue) the claim with the highest generation on a partition across the
-- workers' databases says whose rows of the partition's queues are current. Replaced at
-- each assignment; a worker stopping keeps its last claim.
CREATE TABLE IF NOT EXISTS worker_partitions (
    worker      VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    partition   INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    assigned_at TIMESTAMPTZ NOT NULL
);

-- A stateful adapter's agents (Asterisk queue_log: queue membership, calls, a pause taken
-- during a call) as of the source partition's stored offset, written in the same
-- transaction, so a restarted worker's parser continues from it (pipeline/ingest/adapters).
CREATE TABLE IF NOT EXISTS adapter_agents (
    source      VARCHAR NOT NULL,
    partition   INTEGER NOT NULL,
    agent_id    VARCHAR NOT NULL,
    queues      VARCHAR[] NOT NULL,
    calls       VARCHAR[] NOT NULL,
    paused      BOOLEAN NOT NULL,
    reason      VARCHAR,
    last_state  VARCHAR,
    last_reason VARCHAR,
    PRIMARY KEY (source, partition, agent_id)
);

-- The (queue | agent, interval)s whose aggregates in queue_interval / agent_interval are due
-- for a recompute from the stored events (pipeline/core/store.py): filled by each batch, in
-- its transaction, and emptied by the recompute. A long-running process recomputes them
-- after the batches' commits, every few seconds; kept in the database so that a process stopped
-- in between finishes them when it opens the database again.
CREATE TABLE IF NOT EXISTS touched_q (queue VARCHAR, interval_start TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS touched_a (agent_id VARCHAR, interval_start TIMESTAMPTZ);
-- Likewise the callers whose calls' contact start and next contact (call_state) are due for
-- a recompute, recomputed first (it lists the intervals of the calls that changed): those
-- of the calls offered from `since` on (NULL: all of them).
CREATE TABLE IF NOT EXISTS touched_callers (caller_key VARCHAR, since TIMESTAMPTZ);
