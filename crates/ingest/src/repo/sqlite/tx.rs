//! SQLite: [`SqliteTx`], one fenced `IMMEDIATE` transaction (`RepoTx`). It
//! proved the run's lease when it began (`runs::prove_lease`) and holds the
//! write lock until it ends; each write goes to the module that holds its
//! statement.

use crate::repo::{
    AttachmentUpsert, BlobUpsert, Fence, HistoryCursor, LabelUpdate, MessageFailure, MessageUpsert,
    Outcome, PurgeCandidate, RepoError, RepoTx, ThreadUpsert, UpsertResult, as_i64,
};
use async_trait::async_trait;
use chrono::DateTime;
use chrono::Utc;
use ledger::NewEvent;
use sqlx::{Sqlite, Transaction};

use super::{gc, quarantine, runs, upserts};

/// One fenced SQLite write transaction (see [`RepoTx`]).
pub struct SqliteTx {
    pub(super) tx: Transaction<'static, Sqlite>,
    pub(super) fence: Fence,
}

#[async_trait]
impl RepoTx for SqliteTx {
    async fn upsert_blobs(&mut self, rows: &[BlobUpsert]) -> Result<Vec<Outcome>, RepoError> {
        upserts::upsert_blobs(&mut self.tx, rows).await
    }

    async fn upsert_threads(
        &mut self,
        rows: &[ThreadUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        upserts::upsert_threads(&mut self.tx, rows).await
    }

    async fn upsert_messages(
        &mut self,
        rows: &[MessageUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        upserts::upsert_messages(&mut self.tx, rows).await
    }

    async fn upsert_attachments(
        &mut self,
        rows: &[AttachmentUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        upserts::upsert_attachments(&mut self.tx, rows).await
    }

    async fn update_labels(&mut self, updates: &[LabelUpdate]) -> Result<Vec<String>, RepoError> {
        upserts::update_labels(&mut self.tx, self.fence.mailbox_id, updates).await
    }

    async fn soft_delete_messages(
        &mut self,
        provider_message_ids: &[String],
        deleted_at: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError> {
        upserts::soft_delete_messages(
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
    ) -> Result<Vec<i64>, RepoError> {
        upserts::thread_ids_of_messages(&mut self.tx, self.fence.mailbox_id, provider_message_ids)
            .await
    }

    async fn refresh_threads(&mut self, thread_ids: &[i64]) -> Result<u64, RepoError> {
        upserts::refresh_threads(&mut self.tx, thread_ids).await
    }

    async fn record_failures(&mut self, failures: &[MessageFailure]) -> Result<(), RepoError> {
        quarantine::record_failures(&mut self.tx, self.fence, failures).await
    }

    async fn release_quarantined(
        &mut self,
        provider_message_ids: &[String],
    ) -> Result<Vec<String>, RepoError> {
        quarantine::release(&mut self.tx, self.fence.mailbox_id, provider_message_ids).await
    }

    async fn append_events(&mut self, events: &[NewEvent]) -> Result<(), RepoError> {
        ledger::sqlite::append(
            &mut self.tx,
            self.fence.mailbox_id,
            self.fence.run_id,
            events,
        )
        .await?;
        Ok(())
    }

    async fn record_run_counts(&mut self, counts: &serde_json::Value) -> Result<(), RepoError> {
        runs::record_counts(&mut self.tx, self.fence, counts).await
    }

    async fn advance_cursor(&mut self, cursor: HistoryCursor) -> Result<(), RepoError> {
        let h = as_i64("historyId", cursor.0)?;
        runs::advance_cursor(&mut self.tx, self.fence.mailbox_id, h, false).await
    }

    async fn mark_purging(
        &mut self,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError> {
        gc::purge::mark_purging(&mut self.tx, self.fence.mailbox_id, deleted_before).await
    }

    async fn lock_purging(
        &mut self,
        sha256s: &[String],
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError> {
        gc::purge::lock_purging(&mut self.tx, self.fence.mailbox_id, sha256s, deleted_before).await
    }

    async fn mark_purged(&mut self, sha256s: &[String]) -> Result<(), RepoError> {
        gc::purge::mark_purged(&mut self.tx, sha256s).await
    }

    async fn commit(self: Box<Self>) -> Result<(), RepoError> {
        self.tx.commit().await.map_err(RepoError::db("commit"))
    }
}
