-- Portable across SQLite and PostgreSQL (the center runs the same SQL on both).
-- No resident name, address or document content is ever stored here: ids, digests,
-- amounts and states only (DESIGN.md §4, "No personal data at rest in the center").

CREATE TABLE challenges (
    nonce_hex           TEXT PRIMARY KEY,
    operator_id         TEXT NOT NULL,
    kiosk_id            TEXT NOT NULL,
    created_at_unix_ms  BIGINT NOT NULL,
    expires_at_unix_ms  BIGINT NOT NULL,
    used_at_unix_ms     BIGINT
);

CREATE TABLE issuances (
    request_id          TEXT PRIMARY KEY,
    operator_id         TEXT NOT NULL,
    kiosk_id            TEXT NOT NULL,
    idempotency_key     TEXT NOT NULL,
    -- SHA-256 of the canonical order (kiosk, key, order): a retry with the same key
    -- must carry the same digest, otherwise it is a conflict.
    order_digest        TEXT NOT NULL,
    municipality_code   TEXT NOT NULL,
    -- schemas::card_binding_digest(request_id, card serial); never the serial itself.
    card_digest         TEXT NOT NULL,
    certificate_type    TEXT NOT NULL,
    copies              BIGINT NOT NULL,
    state               TEXT NOT NULL,
    refusal_reason      TEXT,
    error_code          TEXT,
    fee_yen_per_copy    BIGINT,
    total_fee_yen       BIGINT,
    document_sha256     TEXT,
    page_count          BIGINT,
    created_at_unix_ms  BIGINT NOT NULL,
    updated_at_unix_ms  BIGINT NOT NULL,
    UNIQUE (operator_id, idempotency_key)
);

CREATE INDEX issuances_state ON issuances (state);

-- Append-only: every state transition writes one row in the same transaction.
CREATE TABLE audit_events (
    event_id            TEXT PRIMARY KEY,
    request_id          TEXT NOT NULL,
    at_unix_ms          BIGINT NOT NULL,
    event               TEXT NOT NULL,
    from_state          TEXT,
    to_state            TEXT,
    detail              TEXT
);

CREATE INDEX audit_events_request ON audit_events (request_id);
