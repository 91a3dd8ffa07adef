-- The change feed (`mailingest changes`): named consumers of an org's ledger
-- events, each with its acknowledged position per mailbox, and a wake-up for
-- followers when ledger events commit.
--
-- A position is per mailbox because the ledger's order is: seq is contiguous
-- per mailbox (PRIMARY KEY (mailbox_id, seq)) and the chain lock makes a
-- mailbox's events commit in seq order, so "every event of M with seq > P"
-- never skips one that commits later. A single org-wide number would need a
-- global sequence, whose values commit out of order (a reader can see 7
-- before 6 commits) and so would skip events.
CREATE TABLE feed_consumers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       text        NOT NULL,
    name         text        NOT NULL CHECK (name <> ''),
    -- the fencing token of the process delivering for this consumer: every
    -- acknowledgement proves it in its own transaction (like a run's fence)
    holder_token text,
    holder_host  text,
    holder_pid   integer,
    heartbeat_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feed_consumers_natural_key UNIQUE (org_id, name)
);

CREATE TABLE feed_positions (
    consumer_id bigint      NOT NULL REFERENCES feed_consumers (id),
    mailbox_id  bigint      NOT NULL REFERENCES mailboxes (id),
    -- the last seq of this mailbox the consumer's receiver acknowledged
    seq         bigint      NOT NULL CHECK (seq >= 0),
    acked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_id, mailbox_id)
);

-- Followers LISTEN on this channel. NOTIFY is delivered at COMMIT, so a
-- wake-up never precedes the events it announces; one per statement (and
-- PostgreSQL folds repeats within a transaction), never one per row.
CREATE FUNCTION ledger_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mailingest_ledger', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_events_notify
    AFTER INSERT ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_events_notify();
