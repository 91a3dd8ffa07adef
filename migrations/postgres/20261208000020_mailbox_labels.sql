-- Labels by name (issue 27). Gmail's labels.list, refreshed at the start of
-- every run inside the run's fence: a message row keeps label ids (they never
-- change), this table gives them their names, type, colours and visibility.
-- A label Gmail deleted keeps its row, marked deleted_at, so a message
-- exported with the label, and the ledger events that named it, still have
-- a name; a later label of the same id (Gmail never reuses one) brings it back.
-- Created, renamed, changed and deleted labels are ledger events of the run
-- that learned it (label.created, label.renamed, label.updated, label.deleted;
-- subject label:<id>).

CREATE TABLE mailbox_labels (
    mailbox_id              bigint      NOT NULL REFERENCES mailboxes (id),
    label_id                text        NOT NULL CHECK (label_id <> ''),
    name                    text        NOT NULL,
    label_type              text        NOT NULL CHECK (label_type IN ('system', 'user')),
    -- Gmail's colours (user labels only), as "#rrggbb"
    text_color              text,
    background_color        text,
    -- show | hide (messages), labelShow | labelShowIfUnread | labelHide (the label)
    message_list_visibility text,
    label_list_visibility   text,
    deleted_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, label_id)
);

-- export --label and show --label take a name
CREATE INDEX mailbox_labels_name ON mailbox_labels (mailbox_id, name);

-- each stored message's labels with their names: one row per (message,
-- label); a label id labels.list never listed is named by its id
CREATE VIEW mail_message_labels AS
SELECT m.id AS message_id,
       m.mailbox_id,
       m.provider_message_id,
       l.label_id,
       coalesce(ml.name, l.label_id) AS label_name,
       ml.label_type,
       m.deleted_at
FROM mail_messages m
CROSS JOIN LATERAL unnest(m.label_ids) AS l(label_id)
LEFT JOIN mailbox_labels ml ON ml.mailbox_id = m.mailbox_id AND ml.label_id = l.label_id;

ALTER TABLE ledger_events
    DROP CONSTRAINT ledger_events_event_type_check,
    ADD CONSTRAINT ledger_events_event_type_check CHECK (event_type IN (
        'sync.started', 'thread.ingested', 'message.ingested', 'attachment.saved',
        'message.skipped', 'message.deleted', 'labels.changed', 'history.expired',
        'sync.completed', 'sync.failed', 'sync.interrupted', 'blob.removed',
        'label.created', 'label.renamed', 'label.updated', 'label.deleted'));
