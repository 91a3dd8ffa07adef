-- Completeness checked on a schedule: the worker compares each mailbox with
-- Gmail, both ways (`verify --full`), every so often, and records the result
-- here; `status` marks a mailbox degraded while its last check found
-- differences. next_verify_at starts at a random point of the coming day so
-- a fleet's checks spread over the day instead of all running at once.
ALTER TABLE mailboxes
    ADD COLUMN next_verify_at timestamptz NOT NULL DEFAULT now() + random() * interval '1 day';

CREATE TABLE verify_runs (
    id            bigserial   PRIMARY KEY,
    mailbox_id    bigint      NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL DEFAULT now(),
    ok            boolean     NOT NULL,
    missing_here  bigint      NOT NULL CHECK (missing_here >= 0),
    gone_there    bigint      NOT NULL CHECK (gone_there >= 0),
    -- What the check said, as `verify` prints it (at most a few dozen lines).
    findings      text[]      NOT NULL,
    CHECK (started_at <= finished_at)
);

CREATE INDEX verify_runs_latest ON verify_runs (mailbox_id, id DESC);
