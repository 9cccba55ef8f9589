-- Outcome notices the municipality keeps refusing (a 4xx other than 408/429: it does
-- not know the request, or the notice contradicts its own answer) stop being retried
-- after a few refusals and wait, as dead letters, for an operator to requeue them.
ALTER TABLE outcome_notices ADD COLUMN rejections BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outcome_notices ADD COLUMN dead_at_unix_ms BIGINT;
