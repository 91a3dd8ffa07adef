//! Quarantine values: a message a run could not ingest, as `status` and the
//! retry pass read it back (what a run records is `domain::MessageFailure`). The rows live in `quarantined_messages`
//! (see its migration for the life of a row); the retry policy is here so both
//! backends and the CLI agree on when a message is given up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use async_trait::async_trait;

use super::RepoError;
use crate::domain::FailureKind;

/// Runs that may try one quarantined message before it is given up.
pub const MAX_ATTEMPTS: i32 = 5;

/// How long a rejected message waits before its next try: this × 4^(attempts−1),
/// at most a day (15 min, 1 h, 4 h, 16 h). An unavailable one is retried by
/// the next run.
pub const REJECTED_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// A quarantined message as `status` and the retry pass see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantinedMessage {
    pub mailbox_id: i64,
    pub provider_message_id: String,
    pub provider_thread_id: Option<String>,
    pub kind: FailureKind,
    pub reason: String,
    pub raw_sha256: Option<String>,
    pub attempts: i32,
    pub first_failed_at: DateTime<Utc>,
    pub last_failed_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

impl QuarantinedMessage {
    /// No run retries it any more; an operator must release it.
    pub fn given_up(&self) -> bool {
        self.attempts >= MAX_ATTEMPTS
    }
}

/// The quarantine: messages a run could not ingest, and their retries.
#[async_trait]
pub trait Quarantine: Send + Sync {
    /// Quarantined messages of the mailbox due for another try (up to `limit`, oldest first).
    async fn due_quarantined(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<QuarantinedMessage>, RepoError>;
    /// Every quarantined message, of one mailbox or of all.
    async fn quarantined(
        &self,
        mailbox_id: Option<i64>,
    ) -> Result<Vec<QuarantinedMessage>, RepoError>;
    /// Makes every quarantined message of the mailbox due at the next run,
    /// given-up ones included (one more attempt each); returns how many.
    async fn requeue_quarantined(&self, mailbox_id: i64) -> Result<u64, RepoError>;
}
