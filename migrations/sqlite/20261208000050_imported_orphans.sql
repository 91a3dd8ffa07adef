-- Orphans kept by `import --keep-unmatched` (see
-- migrations/postgres/20261208000050_imported_orphans.sql), and the
-- orphan.kept ledger event.
--
-- The ledger_events CHECK only admits one more value, so the table is not
-- rebuilt: its stored definition is replaced by SQLite's documented
-- writable_schema procedure (https://www.sqlite.org/lang_altertable.html#otheralter),
-- as 20261208000020_mailbox_labels.sql did, which changes no row, index or
-- trigger. The definition is that file's with 'orphan.kept' added.
CREATE TABLE imported_orphans (
    mailbox_id          INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    sha256              TEXT    NOT NULL REFERENCES blobs (sha256),
    size                INTEGER NOT NULL CHECK (size > 0),
    source              TEXT    NOT NULL CHECK (source <> ''),
    file_offset         INTEGER NOT NULL CHECK (file_offset >= 0),
    provider_message_id TEXT    CHECK (provider_message_id <> ''),
    reason              TEXT    NOT NULL CHECK (reason IN ('not_in_mailbox', 'no_id', 'malformed')),
    detail              TEXT    NOT NULL,
    rfc822_message_id   TEXT,
    date_header         TEXT,
    subject             TEXT,
    first_run_id        INTEGER NOT NULL,
    created_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (mailbox_id, sha256),
    CONSTRAINT imported_orphans_run_of_mailbox FOREIGN KEY (first_run_id, mailbox_id)
        REFERENCES sync_runs (id, mailbox_id)
) STRICT;
CREATE INDEX imported_orphans_sha256 ON imported_orphans (sha256);
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = 'CREATE TABLE ledger_events (
    mailbox_id   INTEGER NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    run_id       INTEGER NOT NULL,
    event_type   TEXT    NOT NULL CHECK (event_type IN (
                     ''sync.started'', ''thread.ingested'', ''message.ingested'', ''attachment.saved'',
                     ''message.skipped'', ''message.deleted'', ''labels.changed'', ''history.expired'',
                     ''sync.completed'', ''sync.failed'', ''sync.interrupted'', ''blob.removed'',
                     ''label.created'', ''label.renamed'', ''label.updated'', ''label.deleted'',
                     ''orphan.kept'')),
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
-- A schema change: the CREATE TABLE above bumped the schema cookie too, but
-- one after the procedure makes sure every other connection reads the new
-- definition.
CREATE TABLE imported_orphans_schema_bump (x INTEGER) STRICT;
DROP TABLE imported_orphans_schema_bump;
