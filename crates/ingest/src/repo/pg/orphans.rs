//! PostgreSQL statement of `import --keep-unmatched` inside a batch's fenced
//! transaction: the orphan rows (`imported_orphans`). The listing is in
//! `repo::sql::orphans`, once for both backends.

use std::collections::HashSet;

use sqlx::PgConnection;

use crate::domain::OrphanUpsert;
use crate::repo::text::without_nul;
use crate::repo::{Fence, RepoError};

/// Inserts the orphans the mailbox does not keep yet; returns, per input
/// row, whether it inserted it. An orphan already kept stays as it was first
/// seen (`DO NOTHING`): its source, offset and run are that sighting's, and a
/// re-run writes nothing.
pub(crate) async fn keep_orphans(
    conn: &mut PgConnection,
    fence: Fence,
    rows: &[OrphanUpsert],
) -> Result<Vec<bool>, RepoError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let col = |f: fn(&OrphanUpsert) -> Option<&str>| -> Vec<Option<String>> {
        rows.iter()
            .map(|r| f(r).map(|v| without_nul(v).into_owned()))
            .collect()
    };
    let shas: Vec<&str> = rows.iter().map(|r| r.sha256.as_str()).collect();
    let sizes: Vec<i64> = rows.iter().map(|r| r.size).collect();
    let sources: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    let offsets: Vec<i64> = rows.iter().map(|r| r.file_offset).collect();
    let reasons: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
    let details = col(|r| Some(r.detail.as_str()));
    let ids = col(|r| r.provider_message_id.as_deref());
    let message_ids = col(|r| r.rfc822_message_id.as_deref());
    let dates = col(|r| r.date_header.as_deref());
    let subjects = col(|r| r.subject.as_deref());
    let inserted: HashSet<String> = sqlx::query_scalar(
        "WITH input AS (
             -- The same bytes twice in one batch: the first sighting wins.
             SELECT DISTINCT ON (sha256) *
             FROM unnest($3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
                  WITH ORDINALITY AS t(sha256, size, source, file_offset, reason, detail,
                                       provider_message_id, rfc822_message_id, date_header,
                                       subject, n)
             ORDER BY sha256, n
         )
         INSERT INTO imported_orphans
             (mailbox_id, sha256, size, source, file_offset, reason, detail,
              provider_message_id, rfc822_message_id, date_header, subject, first_run_id)
         SELECT $1, sha256, size, source, file_offset, reason, detail,
                provider_message_id, rfc822_message_id, date_header, subject, $2
         FROM input
         ORDER BY sha256
         ON CONFLICT (mailbox_id, sha256) DO NOTHING
         RETURNING sha256",
    )
    .bind(fence.mailbox_id)
    .bind(fence.run_id)
    .bind(&shas)
    .bind(&sizes)
    .bind(&sources)
    .bind(&offsets)
    .bind(&reasons)
    .bind(&details)
    .bind(&ids)
    .bind(&message_ids)
    .bind(&dates)
    .bind(&subjects)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("keep imported orphans"))?
    .into_iter()
    .collect();
    let mut first = HashSet::new();
    Ok(rows
        .iter()
        .map(|r| inserted.contains(&r.sha256) && first.insert(r.sha256.as_str()))
        .collect())
}
