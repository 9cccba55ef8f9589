-- The trust list's versions (DESIGN.md §5): one row per published content. A replica
-- publishing content whose digest differs from the latest row inserts the next
-- version; the primary key lets exactly one of two racing replicas win. Versions
-- therefore only go up, across restarts and replicas, with no in-process state.
CREATE TABLE trust_list_versions (
    version               BIGINT PRIMARY KEY,
    -- Lower-case hex SHA-256 of the canonical content (keys and revoked documents).
    content_sha256        TEXT NOT NULL,
    published_at_unix_ms  BIGINT NOT NULL
);
