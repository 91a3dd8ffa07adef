//! SQLite statement of `import --keep-unmatched` inside a batch's
//! transaction: the orphan rows (`imported_orphans`), by the rules of the
//! PostgreSQL backend (`repo::pg::orphans`).

use sqlx::SqliteConnection;

use crate::domain::OrphanUpsert;
use crate::repo::text::without_nul;
use crate::repo::{Fence, RepoError};

/// Inserts the orphans the mailbox does not keep yet; returns, per input
/// row, whether it inserted it (the first sighting of the bytes stays).
pub(crate) async fn keep_orphans(
    conn: &mut SqliteConnection,
    fence: Fence,
    rows: &[OrphanUpsert],
) -> Result<Vec<bool>, RepoError> {
    let mut out = Vec::with_capacity(rows.len());
    let text = |v: Option<&str>| v.map(|v| without_nul(v).into_owned());
    for r in rows {
        let inserted: Option<String> = sqlx::query_scalar(
            "INSERT INTO imported_orphans
                 (mailbox_id, sha256, size, source, file_offset, reason, detail,
                  provider_message_id, rfc822_message_id, date_header, subject, first_run_id)
             VALUES (?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?2)
             ON CONFLICT (mailbox_id, sha256) DO NOTHING
             RETURNING sha256",
        )
        .bind(fence.mailbox_id)
        .bind(fence.run_id)
        .bind(&r.sha256)
        .bind(r.size)
        .bind(&r.source)
        .bind(r.file_offset)
        .bind(r.reason.as_str())
        .bind(text(Some(&r.detail)))
        .bind(text(r.provider_message_id.as_deref()))
        .bind(text(r.rfc822_message_id.as_deref()))
        .bind(text(r.date_header.as_deref()))
        .bind(text(r.subject.as_deref()))
        .fetch_optional(&mut *conn)
        .await
        .map_err(RepoError::db("keep imported orphans"))?;
        out.push(inserted.is_some());
    }
    Ok(out)
}
