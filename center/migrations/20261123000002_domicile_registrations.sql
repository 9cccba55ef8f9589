-- 本籍地 利用登録 forwarded by the center. Portable across SQLite and PostgreSQL.
-- Ids, digests, status and times only: the entered 本籍 and 筆頭者 go to the 本籍地
-- municipality and are never stored here.

CREATE TABLE domicile_registrations (
    registration_id             TEXT PRIMARY KEY,
    operator_id                 TEXT NOT NULL,
    kiosk_id                    TEXT NOT NULL,
    idempotency_key             TEXT NOT NULL,
    -- schemas::registration_digest(kiosk, key, registration): a retry with the same
    -- key must carry the same digest, otherwise it is a conflict.
    registration_digest         TEXT NOT NULL,
    -- The 本籍地 the registration goes to.
    municipality_code           TEXT NOT NULL,
    -- schemas::card_binding_digest(registration_id, card serial); never the serial.
    card_digest                 TEXT NOT NULL,
    -- submitted (not yet answered), pending, approved or rejected.
    status                      TEXT NOT NULL,
    created_at_unix_ms          BIGINT NOT NULL,
    updated_at_unix_ms          BIGINT NOT NULL,
    UNIQUE (operator_id, idempotency_key)
);
