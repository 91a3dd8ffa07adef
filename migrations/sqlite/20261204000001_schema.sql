-- mailingest schema for the embedded backend (SQLite): the same tables, keys and
-- rules as migrations/postgres, in one file (this backend starts here).
--
-- What differs from PostgreSQL, and why:
--   * STRICT tables: SQLite then refuses a value of the wrong type, as Postgres does.
--   * Timestamps are TEXT in RFC 3339 UTC as sqlx writes them ("…T…+00:00");
--     every timestamp the code compares is bound from Rust, so one format, and
--     text order is time order.
--   * text[] and jsonb columns are TEXT holding JSON (checked with json_valid).
--   * mail_threads, mail_messages and mail_attachments carry `revision`, the
--     number of updates the row has had: SQLite's RETURNING cannot tell an
--     inserted row from an updated one (Postgres reads xmax), and an upsert
--     reports Inserted / Updated / Unchanged per row.
--   * Exclusivity of a run is not an advisory lock (SQLite has none): see
--     crates/ingest/src/repo/sqlite/runs.rs. The partial unique index
--     sync_runs_one_running is the same.

CREATE TABLE mailboxes (
    id                    INTEGER PRIMARY KEY,
    org_id                TEXT    NOT NULL,
    provider_email        TEXT    NOT NULL CHECK (provider_email = lower(provider_email) AND provider_email <> ''),
    enabled               INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    history_id            INTEGER CHECK (history_id >= 0),
    history_id_updated_at TEXT,
    sync_interval_secs    INTEGER NOT NULL DEFAULT 300 CHECK (sync_interval_secs > 0),
    next_sync_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_error            TEXT,
    -- a random point of the coming day: a fleet's checks spread over the day
    next_verify_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now',
                                      '+' || (abs(random()) % 86400) || ' seconds')),
    created_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT mailboxes_natural_key UNIQUE (org_id, provider_email)
) STRICT;

CREATE INDEX mailboxes_due ON mailboxes (next_sync_at) WHERE enabled;

CREATE TABLE blobs (
    sha256      TEXT    PRIMARY KEY CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size        INTEGER NOT NULL CHECK (size >= 0),
    storage_key TEXT    NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
) STRICT;

CREATE TABLE mail_threads (
    id                 INTEGER PRIMARY KEY,
    mailbox_id         INTEGER NOT NULL REFERENCES mailboxes (id),
    provider_thread_id TEXT    NOT NULL,
    history_id         INTEGER CHECK (history_id >= 0),
    -- how far history_id vouches for the thread (see migrations/postgres/*_thread_coverage.sql)
    complete_since     TEXT,
    complete_until     TEXT,
    snippet            TEXT,
    subject            TEXT,
    message_count      INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    first_message_at   TEXT,
    last_message_at    TEXT,
    revision           INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT mail_threads_natural_key UNIQUE (mailbox_id, provider_thread_id),
    CONSTRAINT mail_threads_coverage
        CHECK (complete_since IS NULL OR complete_until IS NULL OR complete_since < complete_until)
) STRICT;

CREATE TABLE mail_messages (
    id                  INTEGER PRIMARY KEY,
    mailbox_id          INTEGER NOT NULL REFERENCES mailboxes (id),
    thread_id           INTEGER NOT NULL REFERENCES mail_threads (id),
    provider_message_id TEXT    NOT NULL,
    provider_thread_id  TEXT    NOT NULL,
    rfc822_message_id   TEXT,
    in_reply_to         TEXT,
    "references"        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid("references") AND json_type("references") = 'array'),
    subject             TEXT,
    from_addrs          TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(from_addrs)),
    to_addrs            TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(to_addrs)),
    cc_addrs            TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(cc_addrs)),
    bcc_addrs           TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(bcc_addrs)),
    reply_to_addrs      TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(reply_to_addrs)),
    sent_at             TEXT,
    internal_date       TEXT    NOT NULL,
    label_ids           TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(label_ids) AND json_type(label_ids) = 'array'),
    snippet             TEXT,
    size_estimate       INTEGER CHECK (size_estimate >= 0),
    history_id          INTEGER CHECK (history_id >= 0),
    body_text           TEXT,
    body_html           TEXT,
    raw_sha256          TEXT    NOT NULL REFERENCES blobs (sha256),
    raw_size            INTEGER NOT NULL CHECK (raw_size >= 0),
    deleted_at          TEXT,
    revision            INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT mail_messages_natural_key UNIQUE (mailbox_id, provider_message_id)
) STRICT;

CREATE INDEX mail_messages_thread ON mail_messages (thread_id);
CREATE INDEX mail_messages_internal_date ON mail_messages (mailbox_id, internal_date);
CREATE INDEX mail_messages_raw_sha256 ON mail_messages (raw_sha256);

CREATE TABLE mail_attachments (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES mail_messages (id),
    -- the MIME part path ("0", "1.2", ...), never Gmail's rotating attachmentId
    part_id     TEXT    NOT NULL CHECK (part_id <> '' AND part_id NOT GLOB '*[^0-9.]*'
                                        AND part_id NOT GLOB '.*' AND part_id NOT GLOB '*.'
                                        AND part_id NOT GLOB '*..*'),
    filename    TEXT,       -- metadata only: never a path
    mime_type   TEXT    NOT NULL,
    content_id  TEXT,
    disposition TEXT,
    size        INTEGER NOT NULL CHECK (size >= 0),
    sha256      TEXT    NOT NULL REFERENCES blobs (sha256),
    revision    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT mail_attachments_natural_key UNIQUE (message_id, part_id)
) STRICT;

CREATE INDEX mail_attachments_sha256 ON mail_attachments (sha256);

CREATE TABLE sync_runs (
    -- AUTOINCREMENT: a run id is never reused, so a fence can never match a later run
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id       INTEGER NOT NULL REFERENCES mailboxes (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('backfill', 'sync')),
    window_start     TEXT,
    window_end       TEXT,
    status           TEXT    NOT NULL DEFAULT 'running'
                             CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
    started_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    heartbeat_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    finished_at      TEXT,
    start_history_id INTEGER CHECK (start_history_id >= 0),
    end_history_id   INTEGER CHECK (end_history_id >= 0),
    counts           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(counts)),
    error            TEXT,
    host             TEXT,
    pid              INTEGER,
    CONSTRAINT sync_runs_id_mailbox UNIQUE (id, mailbox_id),
    CONSTRAINT sync_runs_window CHECK (window_start IS NULL OR window_end IS NULL OR window_start < window_end),
    CONSTRAINT sync_runs_finished CHECK ((status = 'running') = (finished_at IS NULL))
) STRICT;

-- one live run per mailbox
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (mailbox_id) WHERE status = 'running';
CREATE INDEX sync_runs_mailbox_started ON sync_runs (mailbox_id, started_at DESC);

CREATE TABLE ledger_events (
    mailbox_id   INTEGER NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    run_id       INTEGER NOT NULL,
    event_type   TEXT    NOT NULL CHECK (event_type IN (
                     'sync.started', 'thread.ingested', 'message.ingested', 'attachment.saved',
                     'message.skipped', 'message.deleted', 'labels.changed', 'history.expired',
                     'sync.completed', 'sync.failed', 'sync.interrupted')),
    subject_key  TEXT    NOT NULL,
    payload      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
    created_at   TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL CHECK (length(prev_hash) = 64 AND prev_hash NOT GLOB '*[^0-9a-f]*'),
    hash         TEXT    NOT NULL CHECK (length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*'),
    PRIMARY KEY (mailbox_id, seq),
    CONSTRAINT ledger_events_run_of_mailbox FOREIGN KEY (run_id, mailbox_id)
        REFERENCES sync_runs (id, mailbox_id)
) STRICT;

CREATE INDEX ledger_events_run ON ledger_events (run_id, seq);

-- a run ends once: one terminal event per run
CREATE UNIQUE INDEX ledger_events_one_terminal ON ledger_events (run_id)
    WHERE event_type IN ('sync.completed', 'sync.failed', 'sync.interrupted');

-- append-only: UPDATE and DELETE are refused for everyone (SQLite has no TRUNCATE;
-- a DELETE without WHERE fires these triggers too)
CREATE TRIGGER ledger_events_no_update BEFORE UPDATE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger_events is append-only: UPDATE is not allowed');
END;

CREATE TRIGGER ledger_events_no_delete BEFORE DELETE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger_events is append-only: DELETE is not allowed');
END;

-- Messages a run could not ingest (see migrations/postgres/*_quarantine.sql).
CREATE TABLE quarantined_messages (
    mailbox_id          INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    provider_message_id TEXT    NOT NULL CHECK (provider_message_id <> ''),
    provider_thread_id  TEXT,
    failure             TEXT    NOT NULL CHECK (failure IN ('rejected', 'unavailable')),
    reason              TEXT    NOT NULL,
    raw_sha256          TEXT    REFERENCES blobs (sha256),
    attempts            INTEGER NOT NULL CHECK (attempts >= 1),
    first_failed_at     TEXT    NOT NULL,
    last_failed_at      TEXT    NOT NULL,
    next_attempt_at     TEXT    NOT NULL,
    last_run_id         INTEGER NOT NULL REFERENCES sync_runs (id),
    PRIMARY KEY (mailbox_id, provider_message_id)
) STRICT;

CREATE INDEX quarantined_messages_due ON quarantined_messages (mailbox_id, next_attempt_at);

-- Quota budgets shared by every process on this database (see project_quota.rs).
CREATE TABLE shared_quota (
    key         TEXT PRIMARY KEY CHECK (key <> ''),
    tokens      REAL NOT NULL,
    refilled_at TEXT NOT NULL
) STRICT;

-- Scheduled completeness checks (see migrations/postgres/*_verify_runs.sql).
CREATE TABLE verify_runs (
    id            INTEGER PRIMARY KEY,
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    started_at    TEXT    NOT NULL,
    finished_at   TEXT    NOT NULL,
    ok            INTEGER NOT NULL CHECK (ok IN (0, 1)),
    missing_here  INTEGER NOT NULL CHECK (missing_here >= 0),
    gone_there    INTEGER NOT NULL CHECK (gone_there >= 0),
    findings      TEXT    NOT NULL CHECK (json_valid(findings) AND json_type(findings) = 'array'),
    CHECK (started_at <= finished_at)
) STRICT;

CREATE INDEX verify_runs_latest ON verify_runs (mailbox_id, id DESC);
