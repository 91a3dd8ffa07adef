//! The mailboxes served and their schedule: registering, enabling and
//! disabling, the history cursor, the worker's claim on due mailboxes and
//! when each is due again, and the per-mailbox picture `status` prints.

use std::time::Duration;

use async_trait::async_trait;

use super::{HistoryCursor, MailboxRow, MailboxStatus, NextSync, RepoError};
use crate::domain::Outcome;

/// The mailboxes and their schedule.
#[async_trait]
pub trait Mailboxes: Send + Sync {
    /// Inserts the mailbox if it is new; returns its id either way.
    async fn register_mailbox(&self, org: &str, email: &str) -> Result<(i64, Outcome), RepoError>;
    /// Registers a mailbox for the worker (or re-enables it), optionally with its own interval.
    async fn add_mailbox(
        &self,
        org: &str,
        email: &str,
        interval: Option<Duration>,
    ) -> Result<(i64, Outcome), RepoError>;
    /// Stops scheduling a mailbox; its data stays. False when unknown.
    async fn disable_mailbox(&self, org: &str, email: &str) -> Result<bool, RepoError>;
    /// Every mailbox of `org`, ordered by address.
    async fn list_mailboxes(&self, org: &str) -> Result<Vec<MailboxRow>, RepoError>;
    /// The mailbox's history cursor, if it has one.
    async fn mailbox_cursor(&self, mailbox_id: i64) -> Result<Option<HistoryCursor>, RepoError>;
    /// Claims up to `limit` due, enabled mailboxes of `org`, hiding them from
    /// other workers for `hold`. Concurrent claimers never get the same mailbox.
    async fn claim_due(
        &self,
        org: &str,
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<MailboxRow>, RepoError>;
    /// Sets when a claimed mailbox is due again.
    async fn schedule_next(&self, mailbox_id: i64, next: NextSync<'_>) -> Result<(), RepoError>;
    /// Per mailbox of `org`: schedule, cursor age, stored counts and the last run.
    async fn mailbox_status(&self, org: &str) -> Result<Vec<MailboxStatus>, RepoError>;
}
