//! PostgreSQL statements of scheduled completeness checks: claiming a
//! mailbox's check (one worker wins) and recording its result.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::MailboxId;
use crate::repo::{RepoError, VerifyRun};

#[async_trait]
impl crate::repo::VerifySchedule for super::PgRepository {
    async fn claim_verify(
        &self,
        mailbox_id: MailboxId,
        every: Duration,
    ) -> Result<bool, RepoError> {
        let pool = &self.pool;
        let claimed = sqlx::query(
            "UPDATE mailboxes SET next_verify_at = now() + make_interval(secs => $2)
             WHERE id = $1 AND next_verify_at <= now()",
        )
        .bind(mailbox_id.get())
        .bind(every.as_secs_f64())
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
        sqlx::query(
            "INSERT INTO verify_runs (mailbox_id, started_at, ok, missing_here, gone_there, findings)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(mailbox_id.get())
        .bind(started_at)
        .bind(run.ok)
        .bind(i64::try_from(run.missing_here).unwrap_or(i64::MAX))
        .bind(i64::try_from(run.gone_there).unwrap_or(i64::MAX))
        .bind(&run.findings)
        .execute(pool)
        .await
        .map_err(RepoError::db("record a completeness check"))?;
        Ok(())
    }
}
