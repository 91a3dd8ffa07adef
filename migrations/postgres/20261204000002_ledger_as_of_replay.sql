-- mailbox_state_as_of follows `mailingest show --as-of` exactly: labels only
-- since the message was last made live, in byte order. First released inside
-- 20261204000001_ledger_as_of.sql, which is back to its first text: a
-- migration is never edited once on main, since sqlx refuses a database whose
-- applied migration's checksum no longer matches
-- (crates/ingest/src/repo/pg/schema.rs recognises databases created by the
-- edited text).
--
-- A mailbox as its ledger says it was at an instant, for analysts:
--
--   SELECT * FROM mailbox_state_as_of(<mailbox id>, '2026-12-01T09:00:00Z');
--
-- One row per message live at p_at, with its labels then (NULL when the events
-- up to then did not record them). The same replay as `mailingest show
-- --as-of` (crates/ingest/src/repo/history.rs): an ingest makes a message live
-- with its labels, a label change replaces them, a delete removes it (and its
-- labels), and a later ingest (a message seen again) brings it back. Events count when their
-- created_at is at or before p_at. Message subjects are 'message:<gmail id>'.
CREATE OR REPLACE FUNCTION mailbox_state_as_of(p_mailbox_id bigint, p_at timestamptz)
RETURNS TABLE (provider_message_id text, label_ids text[])
LANGUAGE sql STABLE AS $$
    WITH events AS (
        SELECT substr(subject_key, length('message:') + 1) AS id, seq, event_type, payload
        FROM ledger_events
        WHERE mailbox_id = p_mailbox_id AND created_at <= p_at
          AND event_type IN ('message.ingested', 'labels.changed', 'message.deleted')
          AND subject_key LIKE 'message:%'
    ),
    last_delete AS (
        SELECT id, max(seq) AS seq FROM events WHERE event_type = 'message.deleted' GROUP BY id
    ),
    -- live at p_at: ingested after its last delete; live since that ingest
    live AS (
        SELECT e.id, min(e.seq) AS since
        FROM events e LEFT JOIN last_delete d USING (id)
        WHERE e.event_type = 'message.ingested' AND e.seq > coalesce(d.seq, 0)
        GROUP BY e.id
    ),
    labels AS (
        SELECT DISTINCT ON (e.id) e.id, e.payload -> 'label_ids' AS labels
        FROM events e JOIN live l USING (id)
        WHERE e.seq >= l.since
          AND e.event_type IN ('message.ingested', 'labels.changed')
          AND jsonb_typeof(e.payload -> 'label_ids') = 'array'
        ORDER BY e.id, e.seq DESC
    )
    SELECT l.id,
           CASE WHEN b.labels IS NULL THEN NULL
                ELSE ARRAY(SELECT x FROM jsonb_array_elements_text(b.labels) AS x
                           ORDER BY x COLLATE "C") END
    FROM live l LEFT JOIN labels b USING (id)
    ORDER BY l.id COLLATE "C"
$$;
