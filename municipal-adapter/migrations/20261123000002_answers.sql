-- Idempotency store: the center's request id is the key. Each signed answer is kept
-- byte-for-byte with the digest of the canonical fetch it answers, so a retry of the
-- same fetch replays the identical bytes and a different fetch under the same id is a
-- conflict. The primary key is what makes concurrent first attempts safe: exactly one
-- INSERT wins and every other attempt reads the winner's row.
CREATE TABLE answers (
    request_id         TEXT    PRIMARY KEY,
    municipality_code  TEXT    NOT NULL,
    fetch_sha256       TEXT    NOT NULL,
    answer_json        TEXT    NOT NULL,
    created_at_unix_s  INTEGER NOT NULL
);

CREATE INDEX answers_created_at ON answers (created_at_unix_s);
