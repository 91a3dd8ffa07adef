//! SQLite: the reads of the anchored ledger and of the mailbox's past (see
//! `repo::history`), and the pages `export` reads (`repo::export`).
//! Subjects are whole keys built by `ledger::Subject`.

use chrono::{DateTime, Utc};
use ledger::Subject;
use sqlx::SqlitePool;

use crate::repo::{EventRow, ExportFilter, ExportRow, MessageEvent, RepoError, RowEventMismatch};

pub(crate) async fn ledger_hash_at(
    pool: &SqlitePool,
    mailbox_id: i64,
    seq: i64,
) -> Result<Option<String>, RepoError> {
    sqlx::query_scalar("SELECT hash FROM ledger_events WHERE mailbox_id = ?1 AND seq = ?2")
        .bind(mailbox_id)
        .bind(seq)
        .fetch_optional(pool)
        .await
        .map_err(RepoError::db("read a ledger event"))
}

pub(crate) async fn rows_disagreeing_with_ledger(
    pool: &SqlitePool,
    mailbox_id: i64,
    limit: i64,
) -> Result<Vec<RowEventMismatch>, RepoError> {
    // The bare columns of a max() aggregate come from the row holding the
    // max: each message's latest ingest event.
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "WITH latest AS (
             SELECT subject_key, json_extract(payload, '$.raw_sha256') AS sha, max(seq)
             FROM ledger_events
             WHERE mailbox_id = ?1 AND event_type = 'message.ingested'
               AND json_type(payload, '$.raw_sha256') = 'text'
             GROUP BY subject_key)
         SELECT m.provider_message_id, m.raw_sha256, l.sha
         FROM mail_messages m JOIN latest l ON l.subject_key = ?2 || m.provider_message_id
         WHERE m.mailbox_id = ?1 AND l.sha IS NOT m.raw_sha256
         ORDER BY 1 LIMIT ?3",
    )
    .bind(mailbox_id)
    .bind(Subject::MESSAGE_PREFIX)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("rows against the ledger"))?;
    Ok(rows
        .into_iter()
        .map(|(id, row, event)| RowEventMismatch {
            provider_message_id: id,
            row_raw_sha256: row,
            event_raw_sha256: event,
        })
        .collect())
}

pub(crate) async fn message_events_until(
    pool: &SqlitePool,
    mailbox_id: i64,
    at: DateTime<Utc>,
) -> Result<Vec<MessageEvent>, RepoError> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT seq, event_type, subject_key,
                CASE WHEN json_type(payload, '$.label_ids') = 'array'
                     THEN json_extract(payload, '$.label_ids') END,
                created_at
         FROM ledger_events
         WHERE mailbox_id = ?1 AND created_at <= ?2
           AND event_type IN ('message.ingested', 'labels.changed', 'message.deleted')
         ORDER BY seq",
    )
    .bind(mailbox_id)
    .bind(at)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("read message events"))?;
    rows.into_iter().map(super::super::history_event).collect()
}

pub(crate) async fn export_page(
    pool: &SqlitePool,
    filter: &ExportFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ExportRow>, RepoError> {
    type Row = (
        i64,
        String,
        String,
        String,
        String,
        DateTime<Utc>,
        String,
        i64,
        bool,
        bool,
    );
    let mailbox_ids =
        serde_json::to_string(&filter.mailbox_ids).map_err(|source| RepoError::Encode {
            operation: "read messages to export",
            source,
        })?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT m.id, mb.provider_email, m.provider_message_id, m.provider_thread_id,
                m.label_ids, m.internal_date, m.raw_sha256, m.raw_size, m.deleted_at IS NOT NULL,
                EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = m.raw_sha256 AND b.state = 'purged')
         FROM mail_messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
         WHERE m.mailbox_id IN (SELECT value FROM json_each(?1)) AND m.id > ?2
           AND (?3 IS NULL OR m.internal_date >= ?3)
           AND (?4 IS NULL OR m.internal_date < ?4)
           AND (?5 IS NULL OR EXISTS (SELECT 1 FROM json_each(m.label_ids) WHERE value = ?5))
           AND (?6 OR m.deleted_at IS NULL)
         ORDER BY m.id LIMIT ?7",
    )
    .bind(mailbox_ids)
    .bind(after_id)
    .bind(filter.since)
    .bind(filter.until)
    .bind(filter.label.as_deref())
    .bind(filter.include_deleted)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("read messages to export"))?;
    rows.into_iter()
        .map(
            |(
                id,
                mailbox,
                provider_message_id,
                provider_thread_id,
                labels,
                internal_date,
                raw_sha256,
                raw_size,
                deleted,
                purged,
            )| {
                let label_ids = serde_json::from_str(&labels).map_err(|e| {
                    RepoError::Corrupt(format!(
                        "labels of message {provider_message_id} are not a JSON array: {e}"
                    ))
                })?;
                Ok(ExportRow {
                    id,
                    mailbox,
                    provider_message_id,
                    provider_thread_id,
                    label_ids,
                    internal_date,
                    raw_sha256,
                    raw_size,
                    deleted,
                    purged,
                })
            },
        )
        .collect()
}
