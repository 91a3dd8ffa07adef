//! PostgreSQL statements of the quarantine (`quarantined_messages`): recording
//! a failed attempt inside a batch's fenced transaction and releasing messages
//! that were stored or are gone (the reads are in `repo::sql::quarantine`).

use sqlx::PgConnection;

use crate::domain::MessageFailure;
use crate::repo::quarantine::REJECTED_BACKOFF;
use crate::repo::text::without_nul;
use crate::repo::{Fence, RepoError};

/// Records one failed attempt per message. `attempts` counts runs: a batch
/// replayed after an outage (or a message failing twice in one run) does not
/// count twice, which the `last_run_id` guard decides in the statement itself.
pub(crate) async fn record_failures(
    conn: &mut PgConnection,
    fence: Fence,
    failures: &[MessageFailure],
) -> Result<(), RepoError> {
    if failures.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = failures
        .iter()
        .map(|f| f.provider_message_id.as_str())
        .collect();
    let threads: Vec<Option<&str>> = failures
        .iter()
        .map(|f| f.provider_thread_id.as_deref())
        .collect();
    let kinds: Vec<&str> = failures.iter().map(|f| f.kind.as_str()).collect();
    // A reason quotes Gmail's and the parser's words, which may carry a NUL.
    let reasons: Vec<String> = failures
        .iter()
        .map(|f| without_nul(&f.reason).into_owned())
        .collect();
    let raws: Vec<Option<&str>> = failures.iter().map(|f| f.raw_sha256.as_deref()).collect();
    sqlx::query(
        "WITH input AS (
             -- One row per message: the last failure of the batch wins.
             SELECT DISTINCT ON (id) id, thread_id, failure, reason, raw_sha256
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                  WITH ORDINALITY AS t(id, thread_id, failure, reason, raw_sha256, n)
             ORDER BY id, n DESC
         )
         INSERT INTO quarantined_messages AS q
             (mailbox_id, provider_message_id, provider_thread_id, failure, reason,
              raw_sha256, attempts, next_attempt_at, last_run_id)
         SELECT $1, id, thread_id, failure, reason, raw_sha256, 1,
                CASE failure WHEN 'unavailable' THEN now()
                             ELSE now() + make_interval(secs => $8) END,
                $2
         FROM input
         ON CONFLICT (mailbox_id, provider_message_id) DO UPDATE SET
             provider_thread_id = COALESCE(EXCLUDED.provider_thread_id, q.provider_thread_id),
             failure = EXCLUDED.failure,
             reason = EXCLUDED.reason,
             raw_sha256 = COALESCE(EXCLUDED.raw_sha256, q.raw_sha256),
             attempts = q.attempts + 1,
             last_failed_at = now(),
             next_attempt_at = CASE EXCLUDED.failure WHEN 'unavailable' THEN now()
                 ELSE now() + least(make_interval(secs => $8) * power(4, q.attempts),
                                    interval '1 day') END,
             last_run_id = EXCLUDED.last_run_id
         WHERE q.last_run_id IS DISTINCT FROM EXCLUDED.last_run_id",
    )
    .bind(fence.mailbox_id)
    .bind(fence.run_id)
    .bind(&ids)
    .bind(&threads)
    .bind(&kinds)
    .bind(&reasons)
    .bind(&raws)
    .bind(REJECTED_BACKOFF.as_secs_f64())
    .execute(&mut *conn)
    .await
    .map_err(RepoError::db("record quarantined messages"))?;
    Ok(())
}

/// Drops the quarantine rows of messages that are now stored, gone or out of
/// scope; returns the ids that had one.
pub(crate) async fn release(
    conn: &mut PgConnection,
    mailbox_id: i64,
    provider_message_ids: &[String],
) -> Result<Vec<String>, RepoError> {
    if provider_message_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "DELETE FROM quarantined_messages
         WHERE mailbox_id = $1 AND provider_message_id = ANY($2)
         RETURNING provider_message_id",
    )
    .bind(mailbox_id)
    .bind(provider_message_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepoError::db("release quarantined messages"))
}
