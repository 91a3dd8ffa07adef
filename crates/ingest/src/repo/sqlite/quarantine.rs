//! SQLite statements of the quarantine (`quarantined_messages`) inside a
//! batch's transaction; the rules are those of the PostgreSQL backend (see
//! `repo::quarantine`), the reads are in `repo::sql::quarantine`.

use std::collections::HashMap;

use sqlx::SqliteConnection;

use super::{TS, after, now};
use crate::domain::MessageFailure;
use crate::repo::quarantine::REJECTED_BACKOFF;
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
