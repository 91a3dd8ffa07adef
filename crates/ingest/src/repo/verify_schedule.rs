//! Scheduled completeness checks: the worker claims a mailbox's due check
//! (one worker wins) and records how it went, for `status` to show.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{RepoError, VerifyRun};
use crate::domain::MailboxId;

/// The schedule and record of the worker's completeness checks.
#[async_trait]
pub trait VerifySchedule: Send + Sync {
    /// Takes the mailbox's completeness check if due (moving the next one
    /// `every` on); false when not due or another worker took it.
    async fn claim_verify(&self, mailbox_id: MailboxId, every: Duration)
    -> Result<bool, RepoError>;
    /// Records a completeness check that started at `started_at`.
    async fn record_verify(
        &self,
        mailbox_id: MailboxId,
        started_at: DateTime<Utc>,
        run: &VerifyRun,
    ) -> Result<(), RepoError>;
}
