//! The reads an engine plans a batch with: what is stored already (thread
//! historyIds and coverage, message ids, labels), by natural key, so an
//! unchanged thread or message is neither fetched nor written again.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{RepoError, StoredThread};

/// What is stored already, read by natural key.
#[async_trait]
pub trait PlanReads: Send + Sync {
    /// The stored historyId (`None`: not known current) and its coverage of
    /// each listed thread that has a row.
    async fn thread_history_ids(
        &self,
        mailbox_id: i64,
        provider_thread_ids: &[String],
    ) -> Result<HashMap<String, StoredThread>, RepoError>;
    /// Which of the given messages are stored (deleted or not).
    async fn stored_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError>;
    /// Every stored message (deleted or not) of one thread, by provider id.
    async fn stored_thread_message_ids(
        &self,
        mailbox_id: i64,
        provider_thread_id: &str,
    ) -> Result<HashSet<String>, RepoError>;
    /// Messages stored and not marked deleted whose internalDate is in
    /// `[since, until)`: what a run without a usable history cursor holds
    /// Gmail to account for.
    async fn live_message_ids_between(
        &self,
        mailbox_id: i64,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError>;
    /// The stored labels of each of the given messages that is stored
    /// (deleted or not), in their stored order.
    async fn stored_labels(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, RepoError>;
}
