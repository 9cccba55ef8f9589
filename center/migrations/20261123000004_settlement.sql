-- Settlement windows, their items, reconciliations, and the outcome-notice outbox
-- (DESIGN.md §4, §6). Portable across SQLite and PostgreSQL. Integer yen only.

-- When the kiosk's `ok` print report was recorded (what the settlement cut compares).
ALTER TABLE issuances ADD COLUMN printed_at_unix_ms BIGINT;

-- One window per business day (Asia/Tokyo), named by its date. open → closed →
-- reconciling → settled; never back.
CREATE TABLE settlement_windows (
    business_date       TEXT PRIMARY KEY,
    state               TEXT NOT NULL,
    -- Items printed in [starts_at, ends_at) belong to the window. ends_at is the
    -- scheduled cut until the window closes; an early close moves it to the close.
    starts_at_unix_ms   BIGINT NOT NULL,
    ends_at_unix_ms     BIGINT NOT NULL,
    opened_at_unix_ms   BIGINT NOT NULL,
    closed_at_unix_ms   BIGINT,
    settled_at_unix_ms  BIGINT
);

-- At most one open window, whatever the number of replicas.
CREATE UNIQUE INDEX settlement_windows_one_open ON settlement_windows (state)
    WHERE state = 'open';

-- A printed issuance is settled in exactly one window (the primary key).
CREATE TABLE settlement_items (
    request_id               TEXT PRIMARY KEY,
    business_date            TEXT NOT NULL,
    operator_id              TEXT NOT NULL,
    kiosk_id                 TEXT NOT NULL,
    municipality_code        TEXT NOT NULL,
    certificate_type         TEXT NOT NULL,
    copies                   BIGINT NOT NULL,
    gross_yen                BIGINT NOT NULL,
    -- The operator's agreement when the window closed (never recomputed).
    commission_per_copy_yen  BIGINT NOT NULL,
    printed_at_unix_ms       BIGINT NOT NULL,
    -- 1: the issuance was made before the window started (late, an adjustment).
    adjustment               BIGINT NOT NULL
);

CREATE INDEX settlement_items_window ON settlement_items (business_date);

-- Paid with the print outcome unknown at a window's cut-off (listed in that window's
-- reports; the issuance itself moves to recon_required).
CREATE TABLE settlement_recon_items (
    request_id          TEXT NOT NULL,
    business_date       TEXT NOT NULL,
    operator_id         TEXT NOT NULL,
    kiosk_id            TEXT NOT NULL,
    municipality_code   TEXT NOT NULL,
    paid_yen            BIGINT NOT NULL,
    PRIMARY KEY (request_id, business_date)
);

-- The latest reconciliation of each operator's transaction file per window.
CREATE TABLE settlement_reconciliations (
    business_date         TEXT NOT NULL,
    operator_id           TEXT NOT NULL,
    submitted_at_unix_ms  BIGINT NOT NULL,
    operator_file_sha256  TEXT NOT NULL,
    matched               BIGINT NOT NULL,
    missing_at_center     BIGINT NOT NULL,
    missing_at_operator   BIGINT NOT NULL,
    amount_mismatch       BIGINT NOT NULL,
    matched_yen           BIGINT NOT NULL,
    PRIMARY KEY (business_date, operator_id)
);

-- Transactional outbox: written in the transaction that records a print; delivered
-- to the municipality (交付記録) with retries and back-off until acknowledged.
CREATE TABLE outcome_notices (
    request_id               TEXT PRIMARY KEY,
    municipality_code        TEXT NOT NULL,
    created_at_unix_ms       BIGINT NOT NULL,
    attempts                 BIGINT NOT NULL,
    next_attempt_at_unix_ms  BIGINT NOT NULL,
    delivered_at_unix_ms     BIGINT,
    last_error               TEXT
);

CREATE INDEX outcome_notices_due ON outcome_notices (next_attempt_at_unix_ms);
