//! The orphan listing ([`OrphanReads`], see `repo::orphans`), once for both
//! backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{HasDb, on_either};
use crate::domain::{ImportedOrphan, OrphanReason, OrphanUpsert};
use crate::repo::{OrphanReads, RepoError};

#[async_trait]
impl<B: HasDb> OrphanReads for B {
    async fn imported_orphans(&self, mailbox_id: i64) -> Result<Vec<ImportedOrphan>, RepoError> {
        let sql = "SELECT sha256, size, source, file_offset, provider_message_id, reason, detail,
                          rfc822_message_id, date_header, subject, first_run_id, created_at
                   FROM imported_orphans WHERE mailbox_id = $1
                   ORDER BY first_run_id, source, file_offset, sha256";
        let rows: Vec<OrphanRow> = on_either!(self.db(), |pool| sqlx::query_as(sql)
            .bind(mailbox_id)
            .fetch_all(pool)
            .await)
        .map_err(RepoError::db("read imported orphans"))?;
        rows.into_iter().map(ImportedOrphan::try_from).collect()
    }
}

/// An `imported_orphans` row as both backends read it.
#[derive(sqlx::FromRow)]
struct OrphanRow {
    sha256: String,
    size: i64,
    source: String,
    file_offset: i64,
    provider_message_id: Option<String>,
    reason: String,
    detail: String,
    rfc822_message_id: Option<String>,
    date_header: Option<String>,
    subject: Option<String>,
    first_run_id: i64,
    created_at: DateTime<Utc>,
}

impl TryFrom<OrphanRow> for ImportedOrphan {
    type Error = RepoError;
    fn try_from(r: OrphanRow) -> Result<Self, RepoError> {
        let reason =
            OrphanReason::try_from(r.reason).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        Ok(ImportedOrphan {
            row: OrphanUpsert {
                sha256: r.sha256,
                size: r.size,
                source: r.source,
                file_offset: r.file_offset,
                provider_message_id: r.provider_message_id,
                reason,
                detail: r.detail,
                rfc822_message_id: r.rfc822_message_id,
                date_header: r.date_header,
                subject: r.subject,
            },
            first_run_id: r.first_run_id,
            created_at: r.created_at,
        })
    }
}
