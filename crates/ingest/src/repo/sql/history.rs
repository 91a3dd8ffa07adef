//! The reads of the anchored ledger and of the mailbox's past
//! ([`LedgerHistory`], see `repo::history`), once for both backends. Subjects
//! are whole keys built by `ledger::Subject`; the JSON of an event's payload
//! is read with each backend's own functions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::Subject;

use super::{Db, Dialect, HasDb, on_either};
use crate::repo::{
    EventRow, LedgerHistory, MessageEvent, RepoError, RowEventMismatch, history_event,
};

#[async_trait]
impl<B: HasDb> LedgerHistory for B {
    async fn ledger_head(&self, mailbox_id: i64) -> Result<Option<ledger::ChainHead>, RepoError> {
        let acquire = RepoError::db("acquire");
        Ok(match self.db() {
            Db::Pg(pool) => {
                let mut conn = pool.acquire().await.map_err(acquire)?;
                ledger::chain_head(&mut conn, mailbox_id).await?
            }
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(acquire)?;
                ledger::sqlite::chain_head(&mut conn, mailbox_id).await?
            }
        })
    }

    async fn ledger_hash_at(&self, mailbox_id: i64, seq: i64) -> Result<Option<String>, RepoError> {
        let sql = "SELECT hash FROM ledger_events WHERE mailbox_id = $1 AND seq = $2";
        on_either!(self.db(), |pool| sqlx::query_scalar(sql)
            .bind(mailbox_id)
            .bind(seq)
            .fetch_optional(pool)
            .await)
        .map_err(RepoError::db("read a ledger event"))
    }

    async fn rows_disagreeing_with_ledger(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<RowEventMismatch>, RepoError> {
        let db = self.db();
        // One pass over the mailbox's ingest events, hashed against its
        // messages (a per-message probe would scan the chain once per
        // message). On SQLite the bare columns of a max() aggregate come from
        // the row holding the max: each message's latest ingest event.
        let sql = match db.dialect() {
            Dialect::Postgres => {
                "WITH latest AS (
                     SELECT DISTINCT ON (subject_key) subject_key, payload->>'raw_sha256' AS sha
                     FROM ledger_events
                     WHERE mailbox_id = $1 AND event_type = 'message.ingested'
                       AND jsonb_typeof(payload->'raw_sha256') = 'string'
                     ORDER BY subject_key, seq DESC)
                 SELECT m.provider_message_id, m.raw_sha256, l.sha
                 FROM mail_messages m JOIN latest l ON l.subject_key = $2 || m.provider_message_id
                 WHERE m.mailbox_id = $1 AND l.sha IS DISTINCT FROM m.raw_sha256
                 ORDER BY 1 LIMIT $3"
            }
            Dialect::Sqlite => {
                "WITH latest AS (
                     SELECT subject_key, json_extract(payload, '$.raw_sha256') AS sha, max(seq)
                     FROM ledger_events
                     WHERE mailbox_id = $1 AND event_type = 'message.ingested'
                       AND json_type(payload, '$.raw_sha256') = 'text'
                     GROUP BY subject_key)
                 SELECT m.provider_message_id, m.raw_sha256, l.sha
                 FROM mail_messages m JOIN latest l ON l.subject_key = $2 || m.provider_message_id
                 WHERE m.mailbox_id = $1 AND l.sha IS NOT m.raw_sha256
                 ORDER BY 1 LIMIT $3"
            }
        };
        let rows: Vec<(String, String, String)> = on_either!(db, |pool| sqlx::query_as(sql)
            .bind(mailbox_id)
            .bind(Subject::MESSAGE_PREFIX)
            .bind(limit)
            .fetch_all(pool)
            .await)
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

    async fn message_events_until(
        &self,
        mailbox_id: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<MessageEvent>, RepoError> {
        let db = self.db();
        let label_ids = match db.dialect() {
            Dialect::Postgres => {
                "CASE WHEN jsonb_typeof(payload->'label_ids') = 'array'
                      THEN (payload->'label_ids')::text END"
            }
            Dialect::Sqlite => {
                "CASE WHEN json_type(payload, '$.label_ids') = 'array'
                      THEN json_extract(payload, '$.label_ids') END"
            }
        };
        let sql = format!(
            "SELECT seq, event_type, subject_key, {label_ids}, created_at
             FROM ledger_events
             WHERE mailbox_id = $1 AND created_at <= $2
               AND event_type IN ('message.ingested', 'labels.changed', 'message.deleted')
             ORDER BY seq"
        );
        let rows: Vec<EventRow> =
            on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(mailbox_id)
                .bind(at)
                .fetch_all(pool)
                .await)
            .map_err(RepoError::db("read message events"))?;
        rows.into_iter().map(history_event).collect()
    }
}
