-- Labels by name (see migrations/postgres/20261208000020_mailbox_labels.sql):
-- the mailbox_labels table, the mail_message_labels view and the label.*
-- ledger events.
--
-- The ledger_events CHECK only admits four more values, so the table is not
-- rebuilt: its stored definition is replaced by SQLite's documented
-- writable_schema procedure (https://www.sqlite.org/lang_altertable.html#otheralter),
-- as 20261204000003_blob_gc.sql did, which changes no row, index or trigger.
CREATE TABLE mailbox_labels (
    mailbox_id              INTEGER NOT NULL REFERENCES mailboxes (id),
    label_id                TEXT    NOT NULL CHECK (label_id <> ''),
    name                    TEXT    NOT NULL,
    label_type              TEXT    NOT NULL CHECK (label_type IN ('system', 'user')),
    text_color              TEXT,
    background_color        TEXT,
    message_list_visibility TEXT,
    label_list_visibility   TEXT,
    deleted_at              TEXT,
    created_at              TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at              TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (mailbox_id, label_id)
) STRICT;
CREATE INDEX mailbox_labels_name ON mailbox_labels (mailbox_id, name);
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = 'CREATE TABLE ledger_events (
    mailbox_id   INTEGER NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    run_id       INTEGER NOT NULL,
    event_type   TEXT    NOT NULL CHECK (event_type IN (
                     ''sync.started'', ''thread.ingested'', ''message.ingested'', ''attachment.saved'',
                     ''message.skipped'', ''message.deleted'', ''labels.changed'', ''history.expired'',
                     ''sync.completed'', ''sync.failed'', ''sync.interrupted'', ''blob.removed'',
                     ''label.created'', ''label.renamed'', ''label.updated'', ''label.deleted'')),
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
-- step), so every other connection reads the new definition too.
CREATE VIEW mail_message_labels AS
SELECT m.id AS message_id,
       m.mailbox_id,
       m.provider_message_id,
       l.value AS label_id,
       coalesce(ml.name, l.value) AS label_name,
       ml.label_type,
       m.deleted_at
FROM mail_messages m
CROSS JOIN json_each(m.label_ids) AS l
LEFT JOIN mailbox_labels ml ON ml.mailbox_id = m.mailbox_id AND ml.label_id = l.value;
