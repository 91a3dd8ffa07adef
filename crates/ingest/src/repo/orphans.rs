//! Orphans an import kept (`imported_orphans`): the [`OrphanReads`] role,
//! what `mailingest orphans` lists. Keeping them is a write of the import's
//! fenced transaction ([`RepoTx::keep_orphans`](super::RepoTx::keep_orphans),
//! in `pg/orphans.rs` and `sqlite/orphans.rs`); gc, purge and verify read the
//! table inside their own statements (`sql::purge`, `sql::audit`).

use async_trait::async_trait;

use super::RepoError;
use crate::domain::ImportedOrphan;

/// What reads a mailbox's kept orphans.
#[async_trait]
pub trait OrphanReads: Send + Sync {
    /// Every orphan the mailbox keeps, in the order they were first kept.
    async fn imported_orphans(&self, mailbox_id: i64) -> Result<Vec<ImportedOrphan>, RepoError>;
}
