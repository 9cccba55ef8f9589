-- 交付記録 (issuance record): one row per certificate the center reports as printed,
-- keyed by the center's request id. The center delivers each notice at least once; the
-- primary key makes a repeated notice a no-op (even when copies arrive concurrently),
-- and notice_sha256 (SHA-256 of the notice's canonical JSON, lower-case hex) tells the
-- same notice again from a different notice under a recorded id.
-- subject_name is the certificate holder's name as this adapter's own signed answer
-- named it, copied at record time so the record outlives the answer's retention.
CREATE TABLE issuance_records (
    request_id          TEXT    PRIMARY KEY,
    municipality_code   TEXT    NOT NULL,
    certificate_type    TEXT    NOT NULL,
    copies              INTEGER NOT NULL CHECK (copies >= 1),
    page_count          INTEGER NOT NULL CHECK (page_count >= 1),
    total_fee_yen       INTEGER NOT NULL CHECK (total_fee_yen >= 0),
    document_sha256     TEXT    NOT NULL,
    card_digest         TEXT    NOT NULL,
    operator_id         TEXT    NOT NULL,
    kiosk_id            TEXT    NOT NULL,
    printed_at_unix_ms  INTEGER NOT NULL,
    recorded_at_unix_ms INTEGER NOT NULL,
    notice_sha256       TEXT    NOT NULL,
    subject_name        TEXT
);

CREATE INDEX issuance_records_printed
    ON issuance_records (municipality_code, printed_at_unix_ms);
