-- Periodic work must cost what it does, not the size of the history (issue 8).
--
-- The sweep deletes challenges whose nonce expired a day ago: without this index every
-- sweep scanned every challenge kept (a day of visits), on SQLite inside the one writer.
CREATE INDEX challenges_expiry ON challenges (expires_at_unix_ms);

-- A delivery round asks for the notices still due; delivered and dead-lettered ones
-- keep their last next_attempt_at_unix_ms, so the full index made every round step over
-- every notice ever delivered. Only pending notices are indexed now.
DROP INDEX outcome_notices_due;
CREATE INDEX outcome_notices_due ON outcome_notices (next_attempt_at_unix_ms)
    WHERE delivered_at_unix_ms IS NULL AND dead_at_unix_ms IS NULL;
