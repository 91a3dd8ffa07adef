//! The quarantine's reads and its requeue ([`Quarantine`], see
//! `repo::quarantine`), once for both backends; recording and releasing
//! messages happen inside a batch's transaction, in each backend's
//! `quarantine.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{HasDb, on_either};
use crate::domain::{FailureKind, UnknownValue};
use crate::repo::quarantine::{MAX_ATTEMPTS, QuarantinedMessage};
use crate::repo::{Quarantine, RepoError};

#[async_trait]
impl<B: HasDb> Quarantine for B {
    async fn due_quarantined(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<QuarantinedMessage>, RepoError> {
        let db = self.db();
        let clock = db.dialect().host_clock();
        let sql = format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantined_messages
             WHERE mailbox_id = $1 AND attempts < $2 AND next_attempt_at <= {now}
             ORDER BY first_failed_at, provider_message_id
             LIMIT $3",
            now = db.dialect().now("$4")
        );
        let rows: Vec<QuarantineRow> = on_either!(db, |pool| {
            let query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(mailbox_id)
                .bind(MAX_ATTEMPTS)
                .bind(limit);
            let query = match clock {
                Some(now) => query.bind(now),
                None => query,
            };
            query.fetch_all(pool).await
        })
        .map_err(RepoError::db("read due quarantined messages"))?;
        rows.into_iter().map(QuarantinedMessage::try_from).collect()
    }

    async fn quarantined(
        &self,
        mailbox_id: Option<i64>,
    ) -> Result<Vec<QuarantinedMessage>, RepoError> {
        let db = self.db();
        let sql = format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantined_messages
             WHERE {mailbox} IS NULL OR mailbox_id = $1
             ORDER BY mailbox_id, first_failed_at, provider_message_id",
            mailbox = db.dialect().typed("$1", "bigint")
        );
        let rows: Vec<QuarantineRow> =
            on_either!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(mailbox_id)
                .fetch_all(pool)
                .await)
            .map_err(RepoError::db("read quarantined messages"))?;
        rows.into_iter().map(QuarantinedMessage::try_from).collect()
    }

    async fn requeue_quarantined(&self, mailbox_id: i64) -> Result<u64, RepoError> {
        let db = self.db();
        let clock = db.dialect().host_clock();
        // One attempt left before a message is given up anew.
        let sql = format!(
            "UPDATE quarantined_messages
             SET attempts = {least}(attempts, $2 - 1), next_attempt_at = {now}
             WHERE mailbox_id = $1",
            least = db.dialect().least(),
            now = db.dialect().now("$3")
        );
        let done = on_either!(db, |pool| {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(mailbox_id)
                .bind(MAX_ATTEMPTS);
            let query = match clock {
                Some(now) => query.bind(now),
                None => query,
            };
            query.execute(pool).await.map(|done| done.rows_affected())
        })
        .map_err(RepoError::db("requeue quarantined messages"))?;
        Ok(done)
    }
}

/// The columns of a [`QuarantineRow`], in its field order.
const QUARANTINE_COLUMNS: &str =
    "mailbox_id, provider_message_id, provider_thread_id, failure, reason,
     raw_sha256, attempts, first_failed_at, last_failed_at, next_attempt_at";

/// A `quarantined_messages` row as both backends read it.
#[derive(sqlx::FromRow)]
struct QuarantineRow {
    mailbox_id: i64,
    provider_message_id: String,
    provider_thread_id: Option<String>,
    failure: String,
    reason: String,
    raw_sha256: Option<String>,
    attempts: i32,
    first_failed_at: DateTime<Utc>,
    last_failed_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
}

impl TryFrom<QuarantineRow> for QuarantinedMessage {
    type Error = RepoError;
    fn try_from(r: QuarantineRow) -> Result<Self, RepoError> {
        let kind: FailureKind = r
            .failure
            .parse()
            .map_err(|e: UnknownValue| RepoError::Corrupt(e.to_string()))?;
        Ok(QuarantinedMessage {
            mailbox_id: r.mailbox_id,
            provider_message_id: r.provider_message_id,
            provider_thread_id: r.provider_thread_id,
            kind,
            reason: r.reason,
            raw_sha256: r.raw_sha256,
            attempts: r.attempts,
            first_failed_at: r.first_failed_at,
            last_failed_at: r.last_failed_at,
            next_attempt_at: r.next_attempt_at,
        })
    }
}
