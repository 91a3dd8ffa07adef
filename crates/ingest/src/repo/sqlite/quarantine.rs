//! SQLite statements of the quarantine (`quarantined_messages`); the rules are
//! those of the PostgreSQL backend (see `repo::quarantine`).

use async_trait::async_trait;
use std::collections::HashMap;

use sqlx::{SqliteConnection, SqlitePool};

use super::{TS, after, now};
use crate::repo::quarantine::{MAX_ATTEMPTS, MessageFailure, QuarantinedMessage, REJECTED_BACKOFF};
use crate::repo::sql::{QUARANTINE_COLUMNS, QuarantineRow};
use crate::repo::text::without_nul;
use crate::repo::{Fence, RepoError};

/// Records one failed attempt per message; `attempts` counts runs (the
/// `last_run_id` guard keeps a replayed batch from counting twice).
pub(crate) async fn record_failures(
    conn: &mut SqliteConnection,
    fence: Fence,
    failures: &[MessageFailure],
) -> Result<(), RepoError> {
    // One row per message: the last failure of the batch wins.
    let mut last: HashMap<&str, &MessageFailure> = HashMap::new();
    for f in failures {
        last.insert(f.provider_message_id.as_str(), f);
    }
    let mut distinct: Vec<&MessageFailure> = last.into_values().collect();
    distinct.sort_by(|a, b| a.provider_message_id.cmp(&b.provider_message_id));
    let at = now();
    let first_backoff = after(at, REJECTED_BACKOFF);
    for f in distinct {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO quarantined_messages AS q
                 (mailbox_id, provider_message_id, provider_thread_id, failure, reason,
                  raw_sha256, attempts, first_failed_at, last_failed_at, next_attempt_at,
                  last_run_id)
             VALUES (?1, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8,
                     CASE ?5 WHEN 'unavailable' THEN ?8 ELSE ?9 END, ?2)
             ON CONFLICT (mailbox_id, provider_message_id) DO UPDATE SET
                 provider_thread_id = coalesce(excluded.provider_thread_id, q.provider_thread_id),
                 failure = excluded.failure,
                 reason = excluded.reason,
                 raw_sha256 = coalesce(excluded.raw_sha256, q.raw_sha256),
                 attempts = q.attempts + 1,
                 last_failed_at = ?8,
                 next_attempt_at = CASE excluded.failure WHEN 'unavailable' THEN ?8
                     ELSE strftime('{TS}', ?8, '+' || min(86400.0,
                              ?10 * (1 << min(2 * q.attempts, 40))) || ' seconds') END,
                 last_run_id = excluded.last_run_id
             WHERE q.last_run_id IS NOT excluded.last_run_id"
        )))
        .bind(fence.mailbox_id)
        .bind(fence.run_id)
        .bind(&f.provider_message_id)
        .bind(f.provider_thread_id.as_deref())
        .bind(f.kind.as_str())
        // A reason quotes Gmail's and the parser's words, which may carry a NUL.
        .bind(without_nul(&f.reason))
        .bind(f.raw_sha256.as_deref())
        .bind(at)
        .bind(first_backoff)
        .bind(REJECTED_BACKOFF.as_secs_f64())
        .execute(&mut *conn)
        .await
        .map_err(RepoError::db("record quarantined messages"))?;
    }
    Ok(())
}

/// Drops the quarantine rows of these messages; returns the ids that had one.
pub(crate) async fn release(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<Vec<String>, RepoError> {
    if provider_message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = serde_json::to_string(provider_message_ids).map_err(|source| RepoError::Encode {
        operation: "release quarantined messages",
        source,
    })?;
    sqlx::query_scalar(
        "DELETE FROM quarantined_messages
         WHERE mailbox_id = ?1 AND provider_message_id IN (SELECT value FROM json_each(?2))
         RETURNING provider_message_id",
    )
    .bind(mailbox_id)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("release quarantined messages"))
}

/// Quarantined messages of the mailbox that a run should try now, oldest first.
pub(crate) async fn due(
    pool: &SqlitePool,
    mailbox_id: i64,
    limit: i64,
) -> Result<Vec<QuarantinedMessage>, RepoError> {
    let rows: Vec<QuarantineRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {QUARANTINE_COLUMNS} FROM quarantined_messages
         WHERE mailbox_id = ?1 AND attempts < ?2 AND next_attempt_at <= ?4
         ORDER BY first_failed_at, provider_message_id
         LIMIT ?3"
    )))
    .bind(mailbox_id)
    .bind(MAX_ATTEMPTS)
    .bind(limit)
    .bind(now())
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("read due quarantined messages"))?;
    rows.into_iter().map(QuarantinedMessage::try_from).collect()
}

/// Every quarantined message, of one mailbox or of all.
pub(crate) async fn list(
    pool: &SqlitePool,
    mailbox_id: Option<i64>,
) -> Result<Vec<QuarantinedMessage>, RepoError> {
    let rows: Vec<QuarantineRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {QUARANTINE_COLUMNS} FROM quarantined_messages
         WHERE ?1 IS NULL OR mailbox_id = ?1
         ORDER BY mailbox_id, first_failed_at, provider_message_id"
    )))
    .bind(mailbox_id)
    .fetch_all(pool)
    .await
    .map_err(RepoError::db("read quarantined messages"))?;
    rows.into_iter().map(QuarantinedMessage::try_from).collect()
}

/// Makes every quarantined message of a mailbox due at the next run, with one
/// attempt left before it is given up anew.
pub(crate) async fn requeue(pool: &SqlitePool, mailbox_id: i64) -> Result<u64, RepoError> {
    let done = sqlx::query(
        "UPDATE quarantined_messages
         SET attempts = min(attempts, ?2 - 1), next_attempt_at = ?3
         WHERE mailbox_id = ?1",
    )
    .bind(mailbox_id)
    .bind(MAX_ATTEMPTS)
    .bind(now())
    .execute(pool)
    .await
    .map_err(RepoError::db("requeue quarantined messages"))?;
    Ok(done.rows_affected())
}

#[async_trait]
impl crate::repo::Quarantine for super::SqliteRepository {
    async fn due_quarantined(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<QuarantinedMessage>, RepoError> {
        due(&self.pool, mailbox_id, limit).await
    }

    async fn quarantined(
        &self,
        mailbox_id: Option<i64>,
    ) -> Result<Vec<QuarantinedMessage>, RepoError> {
        list(&self.pool, mailbox_id).await
    }

    async fn requeue_quarantined(&self, mailbox_id: i64) -> Result<u64, RepoError> {
        requeue(&self.pool, mailbox_id).await
    }
}
