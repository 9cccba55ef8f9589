-- The sealer's work list (center::audit::seal_pending): every audit event is queued
-- here in the transaction that appends it and leaves the queue in the transaction that
-- seals it, so a seal reads only what waits. Finding unsealed events by anti-joining
-- the whole event table cost time in proportion to every event ever written.
-- Not evidence: `center audit verify` checks audit_events against the batches itself.
CREATE TABLE audit_seal_queue (
    event_id            TEXT PRIMARY KEY,
    at_unix_ms          BIGINT NOT NULL
);

CREATE INDEX audit_seal_queue_time ON audit_seal_queue (at_unix_ms, event_id);

INSERT INTO audit_seal_queue (event_id, at_unix_ms)
SELECT e.event_id, e.at_unix_ms FROM audit_events e
WHERE NOT EXISTS (SELECT 1 FROM audit_batch_members m WHERE m.event_id = e.event_id);
