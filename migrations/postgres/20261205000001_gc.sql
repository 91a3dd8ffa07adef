-- mailingest gc --purge-deleted-older-than: the objects of mail Gmail deleted
-- long ago may be removed from the store. Their rows stay (messages keep their
-- NOT NULL reference to the blob and their ledger history); the blob row says
-- the bytes are gone:
--   present  the object is in the store (every blob until now)
--   purging  gc decided to remove it (no live row references it); a writer
--            that records the blob again sets it back to present, and gc
--            checks once more, under a row lock, before removing the object
--   purged   the object was removed; a writer that stores the blob again
--            sets it back to present
-- Each removal is a blob.removed event in the chain of the mailbox whose
-- deleted mail held it, written by a run of kind gc.

ALTER TABLE blobs
    ADD COLUMN state text NOT NULL DEFAULT 'present'
        CHECK (state IN ('present', 'purging', 'purged')),
    ADD COLUMN purged_at timestamptz,
    ADD CONSTRAINT blobs_purged_at CHECK ((state = 'purged') = (purged_at IS NOT NULL));

-- what gc looks at; a partial index stays empty until something is purged
CREATE INDEX blobs_not_present ON blobs (state) WHERE state <> 'present';

ALTER TABLE sync_runs
    DROP CONSTRAINT sync_runs_kind_check,
    ADD CONSTRAINT sync_runs_kind_check CHECK (kind IN ('backfill', 'sync', 'gc'));

ALTER TABLE ledger_events
    DROP CONSTRAINT ledger_events_event_type_check,
    ADD CONSTRAINT ledger_events_event_type_check CHECK (event_type IN (
        'sync.started', 'thread.ingested', 'message.ingested', 'attachment.saved',
        'message.skipped', 'message.deleted', 'labels.changed', 'history.expired',
        'sync.completed', 'sync.failed', 'sync.interrupted', 'blob.removed'));
