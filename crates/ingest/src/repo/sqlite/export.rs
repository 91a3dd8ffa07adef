//! SQLite: the pages `export` reads (`ExportReads`, see `repo::export`),
//! keyset-paginated on the message row id.

use crate::repo::{ExportFilter, ExportRow, RepoError};
use async_trait::async_trait;
use chrono::DateTime;
use chrono::Utc;
use sqlx::SqlitePool;
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

#[async_trait]
impl crate::repo::ExportReads for super::SqliteRepository {
    async fn export_page(
        &self,
        filter: &ExportFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ExportRow>, RepoError> {
        export_page(&self.pool, filter, after_id, limit).await
    }
}
