-- Money after `prepared` (DESIGN.md §4, §6). Portable across SQLite and PostgreSQL.
-- Integer yen only. Amounts, methods and outcomes; never anything about the resident.

-- Integer yen the kiosk reported taken; kept after a voiding, so Σ paid_yen is every
-- yen ever taken (conservation: paid = printed + refunded + unresolved).
ALTER TABLE issuances ADD COLUMN paid_yen BIGINT;
-- cash or e_money.
ALTER TABLE issuances ADD COLUMN payment_method TEXT;
-- Last print outcome reported: ok, failed or unknown.
ALTER TABLE issuances ADD COLUMN print_outcome TEXT;
-- Why an issuance was voided: cancelled, payment_timeout, kiosk_refunded, print_failed.
ALTER TABLE issuances ADD COLUMN void_reason TEXT;

-- At most one refund per issuance (the key makes a double refund impossible).
-- Written in the same transaction as the voiding it belongs to.
CREATE TABLE refunds (
    request_id          TEXT PRIMARY KEY,
    amount_yen          BIGINT NOT NULL,
    reason              TEXT NOT NULL,
    created_at_unix_ms  BIGINT NOT NULL
);

-- The sweep looks for old rows in one state.
CREATE INDEX issuances_state_updated ON issuances (state, updated_at_unix_ms);
