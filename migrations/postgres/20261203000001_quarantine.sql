-- Messages a run could not ingest, one row per (mailbox, message) until it is
-- stored or gone. A poison message must never fail a run nor block a mailbox,
-- and must never be forgotten either: the run records it here (in the same
-- transaction as the batch and its `message.skipped` event), later runs retry
-- it (`attempts` counts runs, not requests; `next_attempt_at` backs off), and
-- `status` and `verify --full` name it until it is resolved.
--
-- failure: 'rejected'    — Gmail or our code refused this message (400, a
--                          parser failure, a field out of range): retried
--                          with backoff, since a fix may come with an upgrade.
--          'unavailable' — retries on one id were exhausted (5xx, 429,
--                          connection errors): retried by the very next run.
-- After `attempts` reaches the engine's bound the row stays, given up, until
-- an operator releases it (`mailbox retry`).
CREATE TABLE quarantined_messages (
    mailbox_id          bigint      NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    provider_message_id text        NOT NULL CHECK (provider_message_id <> ''),
    provider_thread_id  text,
    failure             text        NOT NULL CHECK (failure IN ('rejected', 'unavailable')),
    reason              text        NOT NULL,
    -- The raw bytes, when they were fetched: archived, and kept from gc by this reference.
    raw_sha256          text        REFERENCES blobs (sha256),
    attempts            integer     NOT NULL CHECK (attempts >= 1),
    first_failed_at     timestamptz NOT NULL DEFAULT now(),
    last_failed_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at     timestamptz NOT NULL,
    last_run_id         bigint      NOT NULL REFERENCES sync_runs (id),
    PRIMARY KEY (mailbox_id, provider_message_id)
);

CREATE INDEX quarantined_messages_due ON quarantined_messages (mailbox_id, next_attempt_at);
