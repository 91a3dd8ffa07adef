-- mailingest schema: mailboxes, mail rows, blobs, sync runs and the ledger.
--
-- Every table that ingest writes has a natural unique key; every write is an
-- INSERT ... ON CONFLICT (natural key) DO UPDATE ... WHERE the row differs, so
-- the constraints below are what make re-runs idempotent, not application code.
--
-- Conventions:
--   * surrogate ids are bigint identities; provider ids (Gmail's hex ids) are text.
--   * Gmail historyIds are unsigned 64-bit; real ones fit in bigint, and the
--     client rejects anything larger instead of wrapping.
--   * sha256 values are lowercase hex text, the same string the store uses in
--     its object keys, so a data engineer can join rows to objects by eye.

CREATE TABLE mailboxes (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id                text        NOT NULL,
    provider_email        text        NOT NULL CHECK (provider_email = lower(provider_email) AND provider_email <> ''),
    enabled               boolean     NOT NULL DEFAULT true,
    -- incremental sync cursor: the mailbox historyId everything before which is stored
    history_id            bigint      CHECK (history_id >= 0),
    history_id_updated_at timestamptz,
    -- schedule for `mailingest worker`
    sync_interval_secs    integer     NOT NULL DEFAULT 300 CHECK (sync_interval_secs > 0),
    next_sync_at          timestamptz NOT NULL DEFAULT now(),
    consecutive_failures  integer     NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_error            text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mailboxes_natural_key UNIQUE (org_id, provider_email)
);

CREATE INDEX mailboxes_due ON mailboxes (next_sync_at) WHERE enabled;

CREATE TABLE blobs (
    -- octet_length + a plain class: same values as ~ '^[0-9a-f]{64}$', much cheaper to check
    sha256      text        PRIMARY KEY CHECK (octet_length(sha256) = 64 AND sha256 ~ '^[0-9a-f]+$'),
    size        bigint      NOT NULL CHECK (size >= 0),
    storage_key text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mail_threads (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox_id         bigint      NOT NULL REFERENCES mailboxes (id),
    provider_thread_id text        NOT NULL,
    -- Gmail's thread historyId as last listed: equal on the next listing means unchanged
    history_id         bigint      CHECK (history_id >= 0),
    snippet            text,
    subject            text,
    message_count      integer     NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    first_message_at   timestamptz,
    last_message_at    timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mail_threads_natural_key UNIQUE (mailbox_id, provider_thread_id)
);

CREATE TABLE mail_messages (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox_id          bigint      NOT NULL REFERENCES mailboxes (id),
    thread_id           bigint      NOT NULL REFERENCES mail_threads (id),
    provider_message_id text        NOT NULL,
    provider_thread_id  text        NOT NULL,
    -- RFC 822 headers (encoded words decoded)
    rfc822_message_id   text,
    in_reply_to         text,
    "references"        text[]      NOT NULL DEFAULT '{}',
    subject             text,
    -- address lists as [{"name": ..., "address": ...}], order preserved
    from_addrs          jsonb       NOT NULL DEFAULT '[]',
    to_addrs            jsonb       NOT NULL DEFAULT '[]',
    cc_addrs            jsonb       NOT NULL DEFAULT '[]',
    bcc_addrs           jsonb       NOT NULL DEFAULT '[]',
    reply_to_addrs      jsonb       NOT NULL DEFAULT '[]',
    sent_at             timestamptz, -- the Date header; NULL when absent or unparseable
    -- Gmail metadata
    internal_date       timestamptz NOT NULL,
    label_ids           text[]      NOT NULL DEFAULT '{}',
    snippet             text,
    size_estimate       bigint      CHECK (size_estimate >= 0),
    history_id          bigint      CHECK (history_id >= 0),
    -- bodies as UTF-8 (NUL bytes removed: Postgres text cannot hold them)
    body_text           text,
    body_html           text,
    -- the lossless archive of the whole RFC 822 message
    raw_sha256          text        NOT NULL REFERENCES blobs (sha256),
    raw_size            bigint      NOT NULL CHECK (raw_size >= 0),
    -- soft delete: Gmail deleted it; the row and its blobs are kept
    deleted_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mail_messages_natural_key UNIQUE (mailbox_id, provider_message_id)
);

CREATE INDEX mail_messages_thread ON mail_messages (thread_id);
CREATE INDEX mail_messages_internal_date ON mail_messages (mailbox_id, internal_date);
CREATE INDEX mail_messages_raw_sha256 ON mail_messages (raw_sha256);

CREATE TABLE mail_attachments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  bigint      NOT NULL REFERENCES mail_messages (id),
    -- the MIME part path as Gmail numbers partId ("0", "1.2", ...); NOT Gmail's
    -- attachmentId, which changes on every fetch
    part_id     text        NOT NULL CHECK (part_id ~ '^[0-9]+(\.[0-9]+)*$'),
    filename    text,       -- metadata only: never a path
    mime_type   text        NOT NULL,
    content_id  text,
    disposition text,
    size        bigint      NOT NULL CHECK (size >= 0),
    sha256      text        NOT NULL REFERENCES blobs (sha256),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mail_attachments_natural_key UNIQUE (message_id, part_id)
);

CREATE INDEX mail_attachments_sha256 ON mail_attachments (sha256);

CREATE TABLE sync_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox_id       bigint      NOT NULL REFERENCES mailboxes (id),
    kind             text        NOT NULL CHECK (kind IN ('backfill', 'sync')),
    window_start     timestamptz,
    window_end       timestamptz,
    status           text        NOT NULL DEFAULT 'running'
                                 CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
    started_at       timestamptz NOT NULL DEFAULT now(),
    heartbeat_at     timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    -- the cursor the run started from (sync) and the one it established
    start_history_id bigint      CHECK (start_history_id >= 0),
    end_history_id   bigint      CHECK (end_history_id >= 0),
    counts           jsonb       NOT NULL DEFAULT '{}',
    error            text,
    -- who ran it, for `status` and for an operator chasing a stuck run
    host             text,
    pid              integer,
    -- lets ledger_events reference (run, mailbox) together
    CONSTRAINT sync_runs_id_mailbox UNIQUE (id, mailbox_id),
    CONSTRAINT sync_runs_window CHECK (window_start IS NULL OR window_end IS NULL OR window_start < window_end),
    CONSTRAINT sync_runs_finished CHECK ((status = 'running') = (finished_at IS NULL))
);

-- one live run per mailbox
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (mailbox_id) WHERE status = 'running';
CREATE INDEX sync_runs_mailbox_started ON sync_runs (mailbox_id, started_at DESC);

CREATE TABLE ledger_events (
    -- one hash chain per mailbox; seq is contiguous from 1 within it
    mailbox_id   bigint      NOT NULL,
    seq          bigint      NOT NULL CHECK (seq >= 1),
    run_id       bigint      NOT NULL,
    event_type   text        NOT NULL CHECK (event_type IN (
                     'sync.started', 'thread.ingested', 'message.ingested', 'attachment.saved',
                     'message.skipped', 'message.deleted', 'labels.changed', 'history.expired',
                     'sync.completed', 'sync.failed', 'sync.interrupted')),
    subject_key  text        NOT NULL,
    payload      jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    prev_hash    text        NOT NULL CHECK (octet_length(prev_hash) = 64 AND prev_hash ~ '^[0-9a-f]+$'),
    hash         text        NOT NULL CHECK (octet_length(hash) = 64 AND hash ~ '^[0-9a-f]+$'),
    PRIMARY KEY (mailbox_id, seq),
    -- an event's run belongs to the event's mailbox (and so the mailbox exists)
    CONSTRAINT ledger_events_run_of_mailbox FOREIGN KEY (run_id, mailbox_id)
        REFERENCES sync_runs (id, mailbox_id)
);

CREATE INDEX ledger_events_run ON ledger_events (run_id, seq);

-- a run ends once: one terminal event per run
CREATE UNIQUE INDEX ledger_events_one_terminal ON ledger_events (run_id)
    WHERE event_type IN ('sync.completed', 'sync.failed', 'sync.interrupted');

-- append-only: UPDATE, DELETE and TRUNCATE are refused for everyone, owner included
CREATE FUNCTION ledger_events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ledger_events_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION ledger_events_reject_change();

CREATE TRIGGER ledger_events_no_truncate
    BEFORE TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_events_reject_change();
