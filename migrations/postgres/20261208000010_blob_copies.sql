-- A blob's state is each org's own (issue 26): objects live under each org's
-- store prefix, so one org's copy of some bytes can be purged while another
-- org's is present. Until now the state sat on `blobs`, keyed by sha256
-- alone: after org A purged X, org B storing the same bytes set X back to
-- present, and A's verify and repair then looked for X under A's prefix and
-- reported a loss no repair could mend.
--
-- `blobs` stays the catalogue of content (size, key; what message and
-- attachment rows reference). `blob_copies` says, per org, that the org's
-- prefix holds (present), is about to lose (purging) or lost on purpose
-- (purged) the object. Writers record both in the batch's transaction; gc,
-- purge, verify, repair and export read only their own org's rows. No foreign
-- key to `blobs`: gc claims an unrecorded object by inserting a placeholder
-- copy row (crate::gc), which must not need a catalogue row.

CREATE TABLE blob_copies (
    org_id     text        NOT NULL,
    sha256     text        NOT NULL CHECK (octet_length(sha256) = 64 AND sha256 ~ '^[0-9a-f]+$'),
    state      text        NOT NULL DEFAULT 'present'
                           CHECK (state IN ('present', 'purging', 'purged')),
    purged_at  timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, sha256),
    CONSTRAINT blob_copies_purged_at CHECK ((state = 'purged') = (purged_at IS NOT NULL))
);

CREATE INDEX blob_copies_not_present ON blob_copies (org_id, state) WHERE state <> 'present';

-- Every existing blob belongs to the orgs whose mailboxes' rows reference it,
-- with the state it had.
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

-- One no row references (archived for a message that was skipped) cannot be
-- placed: every org keeps it, so no org's gc removes it.
INSERT INTO blob_copies (org_id, sha256, state, purged_at, created_at)
SELECT o.org_id, b.sha256, b.state, b.purged_at, b.created_at
FROM blobs b CROSS JOIN (SELECT DISTINCT org_id FROM mailboxes) o
WHERE NOT EXISTS (SELECT 1 FROM blob_copies c WHERE c.sha256 = b.sha256);

-- The state moved: nothing reads or writes these any more (the index and the
-- check constraint on them go with them).
ALTER TABLE blobs DROP COLUMN state, DROP COLUMN purged_at;
