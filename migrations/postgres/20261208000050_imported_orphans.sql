-- mailingest import --keep-unmatched (issue 28): an archive entry that is no
-- message of the mailbox (its id is not in Gmail's mailbox, it has no usable
-- id, or its entry is malformed but holds bytes) is kept, not dropped, when
-- the operator asks. Its bytes are a blob like a message's (`blobs`, with the
-- org's copy in `blob_copies`, written in the same batch); this row says
-- which mailbox keeps it, where it came from and why it is not a message.
--
-- The natural key is (mailbox_id, sha256): the same bytes kept twice (a
-- re-run, or a second archive holding them) are one orphan, and the first
-- sighting (source, offset, run) stays. gc and purge count these rows as
-- references of the org's copy (repo::sql::purge), verify checks their
-- objects (repo::sql::audit).
CREATE TABLE imported_orphans (
    mailbox_id          bigint      NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    sha256              text        NOT NULL REFERENCES blobs (sha256),
    size                bigint      NOT NULL CHECK (size > 0),
    -- `takeout:<file sha256>`, as message.ingested records it
    source              text        NOT NULL CHECK (source <> ''),
    -- byte offset of the entry's separator line in that file
    file_offset         bigint      NOT NULL CHECK (file_offset >= 0),
    -- Gmail's id (hex) when the entry named one
    provider_message_id text        CHECK (provider_message_id <> ''),
    reason              text        NOT NULL CHECK (reason IN ('not_in_mailbox', 'no_id', 'malformed')),
    detail              text        NOT NULL,
    -- the message's own headers, raw (unfolded), when it has them
    rfc822_message_id   text,
    date_header         text,
    subject             text,
    first_run_id        bigint      NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, sha256),
    CONSTRAINT imported_orphans_run_of_mailbox FOREIGN KEY (first_run_id, mailbox_id)
        REFERENCES sync_runs (id, mailbox_id)
);

-- gc's purge asks "does any orphan of the org hold this hash?"
CREATE INDEX imported_orphans_sha256 ON imported_orphans (sha256);

ALTER TABLE ledger_events
    DROP CONSTRAINT ledger_events_event_type_check,
    ADD CONSTRAINT ledger_events_event_type_check CHECK (event_type IN (
        'sync.started', 'thread.ingested', 'message.ingested', 'attachment.saved',
        'message.skipped', 'message.deleted', 'labels.changed', 'history.expired',
        'sync.completed', 'sync.failed', 'sync.interrupted', 'blob.removed',
        'label.created', 'label.renamed', 'label.updated', 'label.deleted',
        'orphan.kept'));
