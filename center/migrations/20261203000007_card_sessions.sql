-- Card sessions (DESIGN.md §1: the card is returned right after the PIN). Portable
-- across SQLite and PostgreSQL. The card authenticates once, at the opening; the
-- visit's orders then name the session. Short-lived: the sweep deletes a session once
-- it has expired, and with it the card certificate it kept.

CREATE TABLE card_sessions (
    card_session_id     TEXT PRIMARY KEY,
    operator_id         TEXT NOT NULL,
    kiosk_id            TEXT NOT NULL,
    -- The kiosk's id for the visit, also the idempotency key of the opening.
    visit_key           TEXT NOT NULL,
    -- The card certificate as the card presented it (JSON, signed by the card
    -- authority): each order re-checks it (validity, revocation) and sends its serial
    -- to the municipality, as a signed order would. Kept only while the session lives.
    card_certificate    TEXT NOT NULL,
    -- 住所地 from the certificate (what the opening answered).
    municipality_code   TEXT NOT NULL,
    -- Orders taken so far; an order is taken in the transaction that records it, and
    -- only while orders_used < max_orders.
    orders_used         BIGINT NOT NULL,
    max_orders          BIGINT NOT NULL,
    created_at_unix_ms  BIGINT NOT NULL,
    expires_at_unix_ms  BIGINT NOT NULL,
    -- A retried opening (same kiosk, same visit) finds the session it opened.
    UNIQUE (kiosk_id, visit_key)
);

CREATE INDEX card_sessions_expiry ON card_sessions (expires_at_unix_ms);
