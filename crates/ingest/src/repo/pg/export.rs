//! PostgreSQL: the pages `export` reads (`ExportReads`, see `repo::export`),
//! keyset-paginated on the message row id.

use crate::repo::{ExportFilter, ExportRow, RepoError};
use async_trait::async_trait;
use chrono::DateTime;
use chrono::Utc;
use sqlx::PgPool;
pub(crate) async fn export_page(
    pool: &PgPool,
    filter: &ExportFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ExportRow>, RepoError> {
    type Row = (
        i64,
        String,
        String,
        String,
        Vec<String>,
        DateTime<Utc>,
        String,
        i64,
        bool,
        bool,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT m.id, mb.provider_email, m.provider_message_id, m.provider_thread_id,
                m.label_ids, m.internal_date, m.raw_sha256, m.raw_size, m.deleted_at IS NOT NULL,
                EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = m.raw_sha256 AND b.state = 'purged')
         FROM mail_messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
         WHERE m.mailbox_id = ANY($1) AND m.id > $2
           AND ($3::timestamptz IS NULL OR m.internal_date >= $3)
           AND ($4::timestamptz IS NULL OR m.internal_date < $4)
           AND ($5::text IS NULL OR $5 = ANY(m.label_ids))
           AND ($6 OR m.deleted_at IS NULL)
         ORDER BY m.id LIMIT $7",
    )
    .bind(&filter.mailbox_ids)
    .bind(after_id)
    .bind(filter.since)
    .bind(filter.until)
    .bind(filter.label.as_deref())
    .bind(filter.include_deleted)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("read messages to export"))?;
    Ok(rows.into_iter().map(export_row).collect())
}

/// (row id, mailbox, message, thread, labels, internalDate, raw sha256, raw size, deleted,
/// raw bytes purged by gc).
type PgExportRow = (
    i64,
    String,
    String,
    String,
    Vec<String>,
    DateTime<Utc>,
    String,
    i64,
    bool,
    bool,
);

fn export_row(
    (
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
    ): PgExportRow,
) -> ExportRow {
    ExportRow {
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
    }
}

#[async_trait]
impl crate::repo::ExportReads for super::PgRepository {
    async fn export_page(
        &self,
        filter: &ExportFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ExportRow>, RepoError> {
        export_page(&self.pool, filter, after_id, limit).await
    }
}
