-- A mailbox as its ledger says it was at an instant, for analysts:
--
--   SELECT * FROM mailbox_state_as_of(<mailbox id>, '2026-12-01T09:00:00Z');
--
-- One row per message live at p_at, with its labels then (NULL when the events
-- up to then did not record them). The same replay as `mailingest show
-- --as-of` (crates/ingest/src/repo/history.rs): an ingest makes a message live
-- with its labels, a label change replaces them, a delete removes it, and a
-- later ingest (a message seen again) brings it back. Events count when their
-- created_at is at or before p_at. Message subjects are 'message:<gmail id>'.
CREATE FUNCTION mailbox_state_as_of(p_mailbox_id bigint, p_at timestamptz)
RETURNS TABLE (provider_message_id text, label_ids text[])
LANGUAGE sql STABLE AS $$
    WITH events AS (
        SELECT substr(subject_key, length('message:') + 1) AS id, seq, event_type, payload
        FROM ledger_events
        WHERE mailbox_id = p_mailbox_id AND created_at <= p_at
          AND event_type IN ('message.ingested', 'labels.changed', 'message.deleted')
          AND subject_key LIKE 'message:%'
    ),
    presence AS (
        SELECT DISTINCT ON (id) id, event_type
        FROM events WHERE event_type IN ('message.ingested', 'message.deleted')
        ORDER BY id, seq DESC
    ),
    labels AS (
        SELECT DISTINCT ON (id) id, payload -> 'label_ids' AS labels
        FROM events
        WHERE event_type IN ('message.ingested', 'labels.changed')
          AND jsonb_typeof(payload -> 'label_ids') = 'array'
        ORDER BY id, seq DESC
    )
    SELECT p.id,
           CASE WHEN l.labels IS NULL THEN NULL
                ELSE ARRAY(SELECT jsonb_array_elements_text(l.labels) ORDER BY 1) END
    FROM presence p LEFT JOIN labels l USING (id)
    WHERE p.event_type = 'message.ingested'
    ORDER BY p.id
$$;
