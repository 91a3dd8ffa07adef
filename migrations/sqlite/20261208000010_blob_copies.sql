-- A blob's state is each org's own: see
-- migrations/postgres/20261208000010_blob_copies.sql.
--
-- Unlike PostgreSQL, `blobs.state` and `blobs.purged_at` stay: SQLite cannot
-- drop a column a CHECK constraint names without rebuilding the table, which
-- the message and attachment rows' foreign keys make a long, risky upgrade.
-- Nothing reads or writes them any more; new rows take their defaults.

CREATE TABLE blob_copies (
    org_id     TEXT NOT NULL,
    sha256     TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    state      TEXT NOT NULL DEFAULT 'present' CHECK (state IN ('present', 'purging', 'purged')),
    purged_at  TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (org_id, sha256),
    CHECK ((state = 'purged') = (purged_at IS NOT NULL))
) STRICT;

CREATE INDEX blob_copies_not_present ON blob_copies (org_id, state) WHERE state <> 'present';

DROP INDEX IF EXISTS blobs_not_present;

INSERT INTO blob_copies (org_id, sha256, state, purged_at, created_at)
SELECT DISTINCT mb.org_id, b.sha256, b.state, b.purged_at, b.created_at
FROM (
    SELECT mailbox_id, raw_sha256 AS sha256 FROM mail_messages
    UNION
    SELECT m.mailbox_id, a.sha256 FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
    UNION
    SELECT mailbox_id, raw_sha256 FROM quarantined_messages WHERE raw_sha256 IS NOT NULL
) r
JOIN mailboxes mb ON mb.id = r.mailbox_id
JOIN blobs b ON b.sha256 = r.sha256;

INSERT INTO blob_copies (org_id, sha256, state, purged_at, created_at)
SELECT o.org_id, b.sha256, b.state, b.purged_at, b.created_at
FROM blobs b CROSS JOIN (SELECT DISTINCT org_id FROM mailboxes) o
WHERE NOT EXISTS (SELECT 1 FROM blob_copies c WHERE c.sha256 = b.sha256);
