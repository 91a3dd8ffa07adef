//! The pages `export` reads ([`ExportReads`], see `repo::export`), once for
//! both backends: keyset-paginated on the message row id.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Dialect, HasDb, IdList, Labels, on_either};
use crate::domain::system_id_of_takeout_name;
use crate::repo::{ExportFilter, ExportReads, ExportRow, RepoError};

/// (row id, mailbox, message, thread, labels, internalDate, raw sha256, raw
/// size, deleted, raw bytes purged by gc).
type Row = (
    i64,
    String,
    String,
    String,
    Labels,
    DateTime<Utc>,
    String,
    i64,
    bool,
    bool,
);

#[async_trait]
impl<B: HasDb> ExportReads for B {
    async fn export_page(
        &self,
        filter: &ExportFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ExportRow>, RepoError> {
        let db = self.db();
        // PostgreSQL must be told the type of a parameter that may be NULL;
        // labels are an array there and JSON text on SQLite. A label is
        // matched by id or by its name in `mailbox_labels`.
        let filters = match db.dialect() {
            Dialect::Postgres => {
                "($3::timestamptz IS NULL OR m.internal_date >= $3)
                 AND ($4::timestamptz IS NULL OR m.internal_date < $4)
                 AND ($5::text IS NULL OR $5 = ANY(m.label_ids) OR EXISTS (
                      SELECT 1 FROM mailbox_labels l
                      WHERE l.mailbox_id = m.mailbox_id AND l.name = $5
                        AND l.label_id = ANY(m.label_ids)))"
            }
            Dialect::Sqlite => {
                "($3 IS NULL OR m.internal_date >= $3)
                 AND ($4 IS NULL OR m.internal_date < $4)
                 AND ($5 IS NULL OR EXISTS (
                      SELECT 1 FROM json_each(m.label_ids) j
                      WHERE j.value = $5 OR j.value IN (
                          SELECT l.label_id FROM mailbox_labels l
                          WHERE l.mailbox_id = m.mailbox_id AND l.name = $5)))"
            }
        };
        let sql = format!(
            "SELECT m.id, mb.provider_email, m.provider_message_id, m.provider_thread_id,
                    m.label_ids, m.internal_date, m.raw_sha256, m.raw_size, m.deleted_at IS NOT NULL,
                    EXISTS (SELECT 1 FROM blob_copies c
                            WHERE c.org_id = mb.org_id AND c.sha256 = m.raw_sha256 AND c.state = 'purged')
             FROM mail_messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
             WHERE {} AND m.id > $2
               AND {filters}
               AND ($6 OR m.deleted_at IS NULL)
             ORDER BY m.id LIMIT $7",
            db.dialect().in_list("m.mailbox_id", "$1")
        );
        // Takeout's word for a system label (`Inbox`) stands for its id.
        let label = filter
            .label
            .as_deref()
            .map(|l| system_id_of_takeout_name(l).unwrap_or(l));
        let rows: Vec<Row> =
            on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(IdList(&filter.mailbox_ids))
                .bind(after_id)
                .bind(filter.since)
                .bind(filter.until)
                .bind(label)
                .bind(filter.include_deleted)
                .bind(limit)
                .fetch_all(pool)
                .await)
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
                    let label_ids = labels.of_message(&provider_message_id)?;
                    Ok(ExportRow {
                        id,
                        mailbox,
                        provider_message_id,
                        provider_thread_id,
                        label_ids,
                        label_names: Vec::new(),
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
}
