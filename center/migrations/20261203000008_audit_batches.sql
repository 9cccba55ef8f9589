-- Tamper-evident audit log (center::audit): Merkle batches of audit_events under
-- chained headers signed with the center's key. Portable across SQLite and
-- PostgreSQL; the append-only triggers differ per back-end and are installed from
-- code (center::audit::install_guards) after the migrations.

CREATE TABLE audit_batches (
    -- 1, 2, 3, … : of two replicas sealing at once, one fails on this key.
    batch_no            BIGINT PRIMARY KEY,
    leaf_count          BIGINT NOT NULL,
    -- RFC 6962 Merkle Tree Hash of the members' leaves, hex.
    merkle_root         TEXT NOT NULL,
    -- header_sha256 of batch_no - 1 (zeros for batch 1): unique, so the chain cannot fork.
    prev_header_sha256  TEXT NOT NULL UNIQUE,
    -- SHA-256 of this header's signed bytes (schemas::audit::header_sha256), hex.
    header_sha256       TEXT NOT NULL UNIQUE,
    sealed_at_unix_ms   BIGINT NOT NULL,
    center_kid          TEXT NOT NULL,
    -- Ed25519 over the header's signed bytes, base64.
    signature           TEXT NOT NULL
);

CREATE TABLE audit_batch_members (
    -- An event belongs to at most one batch.
    event_id            TEXT PRIMARY KEY,
    batch_no            BIGINT NOT NULL,
    leaf_index          BIGINT NOT NULL,
    -- SHA-256(0x00 || JCS(event row)) at sealing, hex: names the altered event.
    leaf_hash           TEXT NOT NULL,
    UNIQUE (batch_no, leaf_index)
);

-- The sealer takes unsealed events in (time, id) order.
CREATE INDEX audit_events_time ON audit_events (at_unix_ms, event_id);
