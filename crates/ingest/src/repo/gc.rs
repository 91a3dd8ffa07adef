//! What garbage collection of the store needs from the database (the protocol
//! is in `crate::gc`): the purge candidates, which hashes have a row, and
//! [`GcTx`], the transaction that keeps writers off the objects it removes.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PurgeCandidate, RepoError};
use crate::domain::BlobUpsert;

/// Garbage collection's transaction, on one org's copies. [`GcTx::claim_unrecorded`]
/// inserts a placeholder copy row for each hash the org has none for: a writer recording one of
/// those hashes waits on the row's key until this transaction ends, and then
/// inserts its row anew (which tells it to check the store; see
/// `engine::commit`). [`GcTx::finish`] removes the placeholders and commits:
/// nothing of it is ever visible to another transaction.
#[async_trait]
pub trait GcTx: Send {
    /// Claims those of `blobs` that have no row; returns the claimed hashes.
    async fn claim_unrecorded(&mut self, blobs: &[BlobUpsert]) -> Result<Vec<String>, RepoError>;
    /// Fails unless the transaction is still open on the server (its claims hold).
    async fn still_open(&mut self) -> Result<(), RepoError>;
    /// Removes the placeholders and commits.
    async fn finish(self: Box<Self>) -> Result<(), RepoError>;
}

/// The reads and the transaction of garbage collection.
#[async_trait]
pub trait GcStore: Send + Sync {
    /// What `gc --purge-deleted-older-than --dry-run` would remove for the
    /// mailbox (the predicate of [`RepoTx::mark_purging`], read only).
    async fn purge_candidates(
        &self,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError>;
    /// Of these hashes, those `org` has a copy row for (`blob_copies`: the
    /// org's prefix holds, or held, the object).
    async fn blobs_with_rows(
        &self,
        org: &str,
        sha256s: &[String],
    ) -> Result<HashSet<String>, RepoError>;
    /// Of these hashes, those whose copy row in `org` says `present` (a row
    /// needs the object: not purged, not being purged).
    async fn blobs_present(
        &self,
        org: &str,
        sha256s: &[String],
    ) -> Result<HashSet<String>, RepoError>;
    /// Opens the transaction in which garbage collection removes `org`'s objects.
    async fn begin_gc(&self, org: &str) -> Result<Box<dyn GcTx>, RepoError>;
}
