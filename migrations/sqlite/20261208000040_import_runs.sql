-- mailingest import (see migrations/postgres/20261208000040_import_runs.sql):
-- one more run kind. SQLite cannot alter a constraint; the CHECK only admits
-- one more value, so the table's stored definition is replaced by SQLite's
-- documented writable_schema procedure, as 20261204000003_blob_gc.sql did
-- (it changes no row, index, trigger or foreign key). The definition is that
-- file's with 'import' added.

PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = 'CREATE TABLE sync_runs (
    -- AUTOINCREMENT: a run id is never reused, so a fence can never match a later run
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id       INTEGER NOT NULL REFERENCES mailboxes (id),
    kind             TEXT    NOT NULL CHECK (kind IN (''backfill'', ''sync'', ''gc'', ''import'')),
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

-- off, and this connection reads the definition again
PRAGMA writable_schema = RESET;

-- A schema change bumps the schema cookie (the procedure's schema_version
-- step), so every other connection reads the new definition too. It leaves
-- nothing behind.
CREATE TABLE import_runs_schema_bump (x INTEGER) STRICT;
DROP TABLE import_runs_schema_bump;
