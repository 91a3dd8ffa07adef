//! PostgreSQL statements of `repair`: which stored messages own a blob.

use sqlx::PgPool;

use crate::repo::RepoError;

/// The messages of the mailbox whose raw bytes are this blob, then those
/// with a part that is (a part can be re-derived from its message's raw).
pub(crate) async fn blob_owners(
    pool: &PgPool,
    mailbox_id: i64,
    sha256: &str,
) -> Result<Vec<String>, RepoError> {
    sqlx::query_scalar(
        "SELECT provider_message_id FROM (
             SELECT provider_message_id, 0 AS rank FROM mail_messages
             WHERE mailbox_id = $1 AND raw_sha256 = $2
             UNION
             SELECT m.provider_message_id, 1 FROM mail_attachments a
             JOIN mail_messages m ON m.id = a.message_id
             WHERE m.mailbox_id = $1 AND a.sha256 = $2) o
         ORDER BY rank, provider_message_id
         LIMIT 20",
    )
    .bind(mailbox_id)
    .bind(sha256)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("find the owners of a blob"))
}
