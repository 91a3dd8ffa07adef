//! One fenced write transaction, [`RepoTx`]: a batch's rows, its ledger
//! events, the run's counts and the cursor commit together or not at all.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::NewEvent;

use super::{HistoryCursor, PurgeCandidate, RepoError};
use crate::domain::{
    AttachmentUpsert, BlobUpsert, LabelChange, LabelUpdate, MailboxLabel, MessageFailure,
    MessageUpsert, OrphanUpsert, Outcome, ThreadUpsert, UpsertResult,
};

/// One fenced write transaction: rows, ledger events, run counts and cursor
/// commit together or not at all. Dropping it without `commit` rolls back.
#[async_trait]
pub trait RepoTx: Send {
    /// Records stored objects: `Inserted`, `Updated` (a row gc purged or was
    /// purging, back to present) or `Unchanged` per input row.
    async fn upsert_blobs(&mut self, rows: &[BlobUpsert]) -> Result<Vec<Outcome>, RepoError>;
    /// One result per input row, in input order (likewise the next two).
    async fn upsert_threads(
        &mut self,
        rows: &[ThreadUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError>;
    async fn upsert_messages(
        &mut self,
        rows: &[MessageUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError>;
    async fn upsert_attachments(
        &mut self,
        rows: &[AttachmentUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError>;
    /// Sets labels of stored messages; returns the ids whose row changed.
    async fn update_labels(&mut self, updates: &[LabelUpdate]) -> Result<Vec<String>, RepoError>;
    /// Soft-deletes messages; returns the ids that were live until now.
    async fn soft_delete_messages(
        &mut self,
        provider_message_ids: &[String],
        deleted_at: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError>;
    /// The thread row ids of the given stored messages.
    async fn thread_ids_of_messages(
        &mut self,
        provider_message_ids: &[String],
    ) -> Result<Vec<i64>, RepoError>;
    /// Re-derives subject, count and times of these threads from their live messages.
    async fn refresh_threads(&mut self, thread_ids: &[i64]) -> Result<u64, RepoError>;
    /// Records one failed attempt per message in the quarantine (one per run:
    /// a replayed batch does not count twice).
    async fn record_failures(&mut self, failures: &[MessageFailure]) -> Result<(), RepoError>;
    /// Drops the quarantine rows of these messages (stored, gone or out of
    /// scope now); returns the ids that had one.
    async fn release_quarantined(
        &mut self,
        provider_message_ids: &[String],
    ) -> Result<Vec<String>, RepoError>;
    /// Takes the mailbox's stored labels (`mailbox_labels`) to `listed`, a
    /// fresh labels.list: new and changed labels upserted, unlisted ones
    /// marked deleted; returns the changes the database made.
    async fn refresh_labels(
        &mut self,
        listed: &[MailboxLabel],
    ) -> Result<Vec<LabelChange>, RepoError>;
    /// Keeps archive entries that are no message of the mailbox
    /// (`import --keep-unmatched`): inserts those whose bytes the mailbox
    /// does not keep yet, under the fence's run; returns per input row
    /// whether it was inserted. Their blobs are recorded first (`upsert_blobs`).
    async fn keep_orphans(&mut self, rows: &[OrphanUpsert]) -> Result<Vec<bool>, RepoError>;
    /// Appends events to the mailbox's ledger chain, under the fence's run.
    async fn append_events(&mut self, events: &[NewEvent]) -> Result<(), RepoError>;
    /// Records the run's counts so far (and proves it alive).
    async fn record_run_counts(&mut self, counts: &serde_json::Value) -> Result<(), RepoError>;
    /// Moves the mailbox's cursor forward to `cursor`; never backwards.
    async fn advance_cursor(&mut self, cursor: HistoryCursor) -> Result<(), RepoError>;

    // gc --purge-deleted-older-than (see crate::gc), for the fenced mailbox.

    /// Marks `purging` the blobs that only this mailbox's messages deleted
    /// before `deleted_before` reference (no live or other mailbox's message,
    /// no attachment of one, no quarantine row); returns their hashes, those
    /// left `purging` by an earlier gc included.
    async fn mark_purging(
        &mut self,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError>;
    /// Locks these `purging` blobs until commit and checks them again: those
    /// something else references now go back to `present`; returns the rest,
    /// with the messages of this mailbox that held each.
    async fn lock_purging(
        &mut self,
        sha256s: &[String],
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError>;
    /// Marks `purged` the locked blobs whose objects are removed.
    async fn mark_purged(&mut self, sha256s: &[String]) -> Result<(), RepoError>;
    async fn commit(self: Box<Self>) -> Result<(), RepoError>;
}

/// Implements [`RepoTx`] for a backend's fenced transaction `$tx` (a struct
/// with fields `tx` and `fence`) over that backend's statement modules, which
/// carry the same names on both backends (`super::{upserts, quarantine, runs,
/// gc, labels, orphans}`), and its ledger append `$append`: each write goes to the module that
/// holds its statement, and this routing is written once.
macro_rules! impl_repo_tx {
    ($tx:ty, $append:path) => {
        #[async_trait::async_trait]
        impl $crate::repo::RepoTx for $tx {
            async fn upsert_blobs(
                &mut self,
                rows: &[$crate::domain::BlobUpsert],
            ) -> Result<Vec<$crate::domain::Outcome>, $crate::repo::RepoError> {
                super::upserts::upsert_blobs(&mut self.tx, self.fence.mailbox_id, rows).await
            }

            async fn upsert_threads(
                &mut self,
                rows: &[$crate::domain::ThreadUpsert],
            ) -> Result<Vec<$crate::domain::UpsertResult>, $crate::repo::RepoError> {
                super::upserts::upsert_threads(&mut self.tx, rows).await
            }

            async fn upsert_messages(
                &mut self,
                rows: &[$crate::domain::MessageUpsert],
            ) -> Result<Vec<$crate::domain::UpsertResult>, $crate::repo::RepoError> {
                super::upserts::upsert_messages(&mut self.tx, rows).await
            }

            async fn upsert_attachments(
                &mut self,
                rows: &[$crate::domain::AttachmentUpsert],
            ) -> Result<Vec<$crate::domain::UpsertResult>, $crate::repo::RepoError> {
                super::upserts::upsert_attachments(&mut self.tx, rows).await
            }

            async fn update_labels(
                &mut self,
                updates: &[$crate::domain::LabelUpdate],
            ) -> Result<Vec<String>, $crate::repo::RepoError> {
                super::upserts::update_labels(&mut self.tx, self.fence.mailbox_id, updates).await
            }

            async fn soft_delete_messages(
                &mut self,
                provider_message_ids: &[String],
                deleted_at: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<String>, $crate::repo::RepoError> {
                super::upserts::soft_delete_messages(
                    &mut self.tx,
                    self.fence.mailbox_id,
                    provider_message_ids,
                    deleted_at,
                )
                .await
            }

            async fn thread_ids_of_messages(
                &mut self,
                provider_message_ids: &[String],
            ) -> Result<Vec<i64>, $crate::repo::RepoError> {
                super::upserts::thread_ids_of_messages(
                    &mut self.tx,
                    self.fence.mailbox_id,
                    provider_message_ids,
                )
                .await
            }

            async fn refresh_threads(
                &mut self,
                thread_ids: &[i64],
            ) -> Result<u64, $crate::repo::RepoError> {
                super::upserts::refresh_threads(&mut self.tx, thread_ids).await
            }

            async fn record_failures(
                &mut self,
                failures: &[$crate::domain::MessageFailure],
            ) -> Result<(), $crate::repo::RepoError> {
                super::quarantine::record_failures(&mut self.tx, self.fence, failures).await
            }

            async fn release_quarantined(
                &mut self,
                provider_message_ids: &[String],
            ) -> Result<Vec<String>, $crate::repo::RepoError> {
                super::quarantine::release(
                    &mut self.tx,
                    self.fence.mailbox_id,
                    provider_message_ids,
                )
                .await
            }

            async fn refresh_labels(
                &mut self,
                listed: &[$crate::domain::MailboxLabel],
            ) -> Result<Vec<$crate::domain::LabelChange>, $crate::repo::RepoError> {
                super::labels::refresh_labels(&mut self.tx, self.fence.mailbox_id, listed).await
            }

            async fn keep_orphans(
                &mut self,
                rows: &[$crate::domain::OrphanUpsert],
            ) -> Result<Vec<bool>, $crate::repo::RepoError> {
                super::orphans::keep_orphans(&mut self.tx, self.fence, rows).await
            }

            async fn append_events(
                &mut self,
                events: &[ledger::NewEvent],
            ) -> Result<(), $crate::repo::RepoError> {
                $append(
                    &mut self.tx,
                    self.fence.mailbox_id,
                    self.fence.run_id,
                    events,
                )
                .await?;
                Ok(())
            }

            async fn record_run_counts(
                &mut self,
                counts: &serde_json::Value,
            ) -> Result<(), $crate::repo::RepoError> {
                super::runs::record_counts(&mut self.tx, self.fence, counts).await
            }

            async fn advance_cursor(
                &mut self,
                cursor: $crate::repo::HistoryCursor,
            ) -> Result<(), $crate::repo::RepoError> {
                let h = $crate::repo::as_i64("historyId", cursor.0)?;
                super::runs::advance_cursor(&mut self.tx, self.fence.mailbox_id, h, false).await
            }

            async fn mark_purging(
                &mut self,
                deleted_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<String>, $crate::repo::RepoError> {
                super::gc::purge::mark_purging(&mut self.tx, self.fence.mailbox_id, deleted_before)
                    .await
            }

            async fn lock_purging(
                &mut self,
                sha256s: &[String],
                deleted_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::repo::PurgeCandidate>, $crate::repo::RepoError> {
                super::gc::purge::lock_purging(
                    &mut self.tx,
                    self.fence.mailbox_id,
                    sha256s,
                    deleted_before,
                )
                .await
            }

            async fn mark_purged(
                &mut self,
                sha256s: &[String],
            ) -> Result<(), $crate::repo::RepoError> {
                super::gc::purge::mark_purged(&mut self.tx, self.fence.mailbox_id, sha256s).await
            }

            async fn commit(self: Box<Self>) -> Result<(), $crate::repo::RepoError> {
                self.tx
                    .commit()
                    .await
                    .map_err($crate::repo::RepoError::db("commit"))
            }
        }
    };
}
pub(crate) use impl_repo_tx;
