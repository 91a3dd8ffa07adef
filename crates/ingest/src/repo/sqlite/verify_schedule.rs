//! SQLite statements of scheduled completeness checks (`verify_runs`):
//! claiming a mailbox's check and recording its result.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{after, now};
use crate::domain::MailboxId;
use crate::repo::{RepoError, VerifyRun};

#[async_trait]
impl crate::repo::VerifySchedule for super::SqliteRepository {
    async fn claim_verify(
        &self,
        mailbox_id: MailboxId,
        every: Duration,
    ) -> Result<bool, RepoError> {
        let pool = &self.pool;
        let at = now();
        let next = after(at, every);
        let claimed = sqlx::query(
            "UPDATE mailboxes SET next_verify_at = ?3 WHERE id = ?1 AND next_verify_at <= ?2",
        )
        .bind(mailbox_id.get())
        .bind(at)
        .bind(next)
        .execute(pool)
        .await
        .map_err(RepoError::db("claim a completeness check"))?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn record_verify(
        &self,
        mailbox_id: MailboxId,
        started_at: DateTime<Utc>,
        run: &VerifyRun,
    ) -> Result<(), RepoError> {
        let pool = &self.pool;
        let findings =
            serde_json::to_string(&run.findings).map_err(|source| RepoError::Encode {
                operation: "record a completeness check",
                source,
            })?;
        sqlx::query(
            "INSERT INTO verify_runs (mailbox_id, started_at, finished_at, ok, missing_here,
                                      gone_there, findings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(mailbox_id.get())
        .bind(started_at)
        .bind(now().max(started_at))
        .bind(run.ok)
        .bind(i64::try_from(run.missing_here).unwrap_or(i64::MAX))
        .bind(i64::try_from(run.gone_there).unwrap_or(i64::MAX))
        .bind(findings)
        .execute(pool)
        .await
        .map_err(RepoError::db("record a completeness check"))?;
        Ok(())
    }
}
