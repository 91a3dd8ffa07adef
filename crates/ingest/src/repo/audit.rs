//! What `verify` and `repair` read: duplicate natural keys, stored counts,
//! the blobs rows reference and which messages own one, the ledger chain and
//! the rows and events that disagree with each other.

use std::collections::HashSet;

use async_trait::async_trait;

use super::{DuplicateKey, MailboxCounts, RepoError};
use crate::domain::Window;

/// The reads of `verify` and `repair`.
#[async_trait]
pub trait AuditReads: Send + Sync {
    /// Messages of the mailbox whose raw bytes are the blob `sha256`, then
    /// those with a part that is (up to 20).
    async fn blob_owners(&self, mailbox_id: i64, sha256: &str) -> Result<Vec<String>, RepoError>;
    /// Natural keys present more than once among the org's rows.
    async fn duplicate_keys(&self, org: &str) -> Result<Vec<DuplicateKey>, RepoError>;
    /// (id, address) of the org's mailbox with this address, or of all the org's.
    async fn mailboxes_to_verify(
        &self,
        org: &str,
        email: Option<&str>,
    ) -> Result<Vec<(i64, String)>, RepoError>;
    async fn mailbox_counts(&self, mailbox_id: i64) -> Result<MailboxCounts, RepoError>;
    /// Every sha256 a row of the mailbox references (raw messages, parts and
    /// kept orphans),
    /// distinct, but those gc purged on purpose (mail Gmail deleted long ago).
    async fn referenced_blobs(&self, mailbox_id: i64) -> Result<Vec<String>, RepoError>;
    /// Walks the mailbox's ledger chain and checks each run's terminal event.
    async fn verify_ledger(&self, mailbox_id: i64) -> Result<ledger::ChainReport, RepoError>;
    /// Stored messages with no `message.ingested` event (up to `limit`).
    async fn messages_without_ingest_event(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, RepoError>;
    /// Message ids the ledger records as ingested that have no row (up to `limit`).
    async fn ingest_events_without_message(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, RepoError>;
    /// Every live (not deleted) message of the mailbox with its labels.
    async fn live_messages(&self, mailbox_id: i64)
    -> Result<Vec<(String, Vec<String>)>, RepoError>;
    /// Up to `limit` live messages an import stored (their `message.ingested`
    /// event is an import run's), picked at random: (id, raw sha256).
    async fn imported_sample(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, RepoError>;
    /// The window of the mailbox's last completed backfill.
    async fn last_backfill_window(&self, mailbox_id: i64) -> Result<Option<Window>, RepoError>;
    /// Which of the given messages the ledger records as skipped.
    async fn skipped_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError>;
}
