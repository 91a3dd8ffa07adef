-- See migrations/postgres/20261208000030_change_feed.sql. SQLite has no
-- NOTIFY: followers poll (the database is on this host, the poll is an index
-- probe per mailbox). A consumer's process holds a lock file named by the
-- consumer's id beside the database instead of an advisory lock.
CREATE TABLE feed_consumers (
    id           INTEGER PRIMARY KEY,
    org_id       TEXT    NOT NULL,
    name         TEXT    NOT NULL CHECK (name <> ''),
    holder_token TEXT,
    holder_host  TEXT,
    holder_pid   INTEGER,
    heartbeat_at TEXT,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT feed_consumers_natural_key UNIQUE (org_id, name)
) STRICT;

CREATE TABLE feed_positions (
    consumer_id INTEGER NOT NULL REFERENCES feed_consumers (id),
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes (id),
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    acked_at    TEXT    NOT NULL,
    PRIMARY KEY (consumer_id, mailbox_id)
) STRICT;
