-- gc --purge-deleted-older-than (see migrations/postgres/20261205000001_gc.sql):
-- a blob's state, a 'gc' run kind and the 'blob.removed' ledger event. First
-- released inside 20261204000001_schema.sql, which is back to its first shape
-- (a migration is never edited once on main; crates/ingest/src/repo/sqlite/schema.rs
-- recognises databases created by that edited file).
--
-- SQLite cannot alter a constraint. The two CHECKs below only admit one more
-- value, and the blobs CHECK holds for every existing row (all 'present', no
-- purged_at), so the tables are not rebuilt: their stored definitions are
-- replaced by SQLite's documented writable_schema procedure
-- (https://www.sqlite.org/lang_altertable.html#otheralter), which changes no
-- row, index, trigger or foreign key. A rebuild would copy the whole ledger,
-- and dropping sync_runs under its foreign keys needs them off outside a
-- transaction. Each definition is the one the edited schema file created, so
-- every database ends with the same text whichever way it came.

ALTER TABLE blobs ADD COLUMN
    state       TEXT    NOT NULL DEFAULT 'present' CHECK (state IN ('present', 'purging', 'purged'));
ALTER TABLE blobs ADD COLUMN
    purged_at   TEXT;

PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = 'CREATE TABLE blobs (
    sha256      TEXT    PRIMARY KEY CHECK (length(sha256) = 64 AND sha256 NOT GLOB ''*[^0-9a-f]*''),
    size        INTEGER NOT NULL CHECK (size >= 0),
    storage_key TEXT    NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime(''%Y-%m-%dT%H:%M:%f+00:00'', ''now'')),
    -- gc --purge-deleted-older-than (see migrations/postgres/*_gc.sql)
    state       TEXT    NOT NULL DEFAULT ''present'' CHECK (state IN (''present'', ''purging'', ''purged'')),
    purged_at   TEXT,
    CHECK ((state = ''purged'') = (purged_at IS NOT NULL))
) STRICT'
WHERE type = 'table' AND name = 'blobs';

UPDATE sqlite_schema SET sql = 'CREATE TABLE sync_runs (
    -- AUTOINCREMENT: a run id is never reused, so a fence can never match a later run
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id       INTEGER NOT NULL REFERENCES mailboxes (id),
    kind             TEXT    NOT NULL CHECK (kind IN (''backfill'', ''sync'', ''gc'')),
    window_start     TEXT,
    window_end       TEXT,
    status           TEXT    NOT NULL DEFAULT ''running''
                             CHECK (status IN (''running'', ''completed'', ''failed'', ''interrupted'')),
    started_at       TEXT    NOT NULL DEFAULT (strftime(''%Y-%m-%dT%H:%M:%f+00:00'', ''now'')),
    heartbeat_at     TEXT    NOT NULL DEFAULT (strftime(''%Y-%m-%dT%H:%M:%f+00:00'', ''now'')),
    finished_at      TEXT,
    start_history_id INTEGER CHECK (start_history_id >= 0),
    end_history_id   INTEGER CHECK (end_history_id >= 0),
    counts           TEXT    NOT NULL DEFAULT ''{}'' CHECK (json_valid(counts)),
    error            TEXT,
    host             TEXT,
    pid              INTEGER,
    -- the name of the lock file the run''s process holds while it lives
    -- (crates/ingest/src/repo/sqlite/runs.rs); SQLite has no advisory locks
    lock_token       TEXT    CHECK (lock_token IS NULL OR (length(lock_token) = 32 AND lock_token NOT GLOB ''*[^0-9a-f]*'')),
    CONSTRAINT sync_runs_id_mailbox UNIQUE (id, mailbox_id),
    CONSTRAINT sync_runs_window CHECK (window_start IS NULL OR window_end IS NULL OR window_start < window_end),
    CONSTRAINT sync_runs_finished CHECK ((status = ''running'') = (finished_at IS NULL))
) STRICT'
WHERE type = 'table' AND name = 'sync_runs';

UPDATE sqlite_schema SET sql = 'CREATE TABLE ledger_events (
    mailbox_id   INTEGER NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    run_id       INTEGER NOT NULL,
    event_type   TEXT    NOT NULL CHECK (event_type IN (
                     ''sync.started'', ''thread.ingested'', ''message.ingested'', ''attachment.saved'',
                     ''message.skipped'', ''message.deleted'', ''labels.changed'', ''history.expired'',
                     ''sync.completed'', ''sync.failed'', ''sync.interrupted'', ''blob.removed'')),
    subject_key  TEXT    NOT NULL,
    payload      TEXT    NOT NULL DEFAULT ''{}'' CHECK (json_valid(payload)),
    created_at   TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL CHECK (length(prev_hash) = 64 AND prev_hash NOT GLOB ''*[^0-9a-f]*''),
    hash         TEXT    NOT NULL CHECK (length(hash) = 64 AND hash NOT GLOB ''*[^0-9a-f]*''),
    PRIMARY KEY (mailbox_id, seq),
    CONSTRAINT ledger_events_run_of_mailbox FOREIGN KEY (run_id, mailbox_id)
        REFERENCES sync_runs (id, mailbox_id)
) STRICT'
WHERE type = 'table' AND name = 'ledger_events';

-- off, and this connection reads the definitions again
PRAGMA writable_schema = RESET;

-- A schema change: it bumps the schema cookie (the procedure's schema_version
-- step), so every other connection reads the new definitions too.
CREATE INDEX blobs_not_present ON blobs (state) WHERE state <> 'present';
