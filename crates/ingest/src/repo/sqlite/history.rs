//! SQLite: the reads of the anchored ledger and of the mailbox's past
//! (`LedgerHistory`, see `repo::history`). Subjects are whole keys built by
//! `ledger::Subject`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::Subject;
use sqlx::SqlitePool;

use crate::repo::{EventRow, MessageEvent, RepoError, RowEventMismatch};

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
    rows.into_iter().map(crate::repo::history_event).collect()
}

#[async_trait]
impl crate::repo::LedgerHistory for super::SqliteRepository {
    async fn ledger_head(&self, mailbox_id: i64) -> Result<Option<ledger::ChainHead>, RepoError> {
        Ok(ledger::sqlite::chain_head(&mut *self.conn().await?, mailbox_id).await?)
    }

    async fn ledger_hash_at(&self, mailbox_id: i64, seq: i64) -> Result<Option<String>, RepoError> {
        ledger_hash_at(&self.pool, mailbox_id, seq).await
    }

    async fn rows_disagreeing_with_ledger(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<RowEventMismatch>, RepoError> {
        rows_disagreeing_with_ledger(&self.pool, mailbox_id, limit).await
    }

    async fn message_events_until(
        &self,
        mailbox_id: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<MessageEvent>, RepoError> {
        message_events_until(&self.pool, mailbox_id, at).await
    }
}
