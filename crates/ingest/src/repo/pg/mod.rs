//! PostgreSQL implementation of the repository: the production backend
//! (many workers on many hosts, one database).
//!
//! [`PgRepository`] implements [`Repository`] over a pool; [`PgTx`] is one
//! fenced transaction. The statements live in the submodules by concern; the
//! batch upserts are also public as free functions over a `PgConnection`, for
//! tests that exercise them inside a transaction of their own.

mod connect;
mod gc;
mod history;
mod mailboxes;
mod quarantine;
mod repair;
mod runs;
pub(crate) mod schema;
mod shared_quota;
mod upserts;
mod verify;
mod verify_runs;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::NewEvent;
use sqlx::{PgPool, Postgres, Transaction};

pub use runs::RUN_LOCK_CLASS;
pub use upserts::*;

use super::{
    AttachmentUpsert, BlobUpsert, DuplicateKey, Fence, HeldRun, HistoryCursor, LabelUpdate,
    MailboxCounts, MailboxRow, MailboxStatus, MessageFailure, MessageUpsert, NextSync, Outcome,
    QuarantinedMessage, RepoError, RepoTx, Repository, RunEnd, RunStart, ThreadUpsert,
    UpsertResult, as_i64,
};
use crate::domain::Window;

/// The repository over a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgRepository {
    pool: PgPool,
}

impl PgRepository {
    pub fn new(pool: PgPool) -> Self {
        PgRepository { pool }
    }

    /// Connects to `url` with a pool of up to `max_connections`; a refused or
    /// unreachable server is reported at once, naming host and port.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, RepoError> {
        Ok(PgRepository::new(
            connect::connect(url, max_connections).await?,
        ))
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Repository for PgRepository {
    async fn migrate(&self) -> Result<(), RepoError> {
        schema::migrate(&self.pool)
            .await
            .map_err(RepoError::Migrate)
    }

    async fn register_mailbox(&self, org: &str, email: &str) -> Result<(i64, Outcome), RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        upsert_mailbox(&mut conn, org, email).await
    }

    async fn add_mailbox(
        &self,
        org: &str,
        email: &str,
        interval: Option<Duration>,
    ) -> Result<(i64, Outcome), RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        mailboxes::add(&mut conn, org, email, interval).await
    }

    async fn disable_mailbox(&self, org: &str, email: &str) -> Result<bool, RepoError> {
        mailboxes::disable(&self.pool, org, email).await
    }

    async fn list_mailboxes(&self) -> Result<Vec<MailboxRow>, RepoError> {
        mailboxes::list(&self.pool).await
    }

    async fn mailbox_cursor(&self, mailbox_id: i64) -> Result<Option<HistoryCursor>, RepoError> {
        mailboxes::cursor(&self.pool, mailbox_id).await
    }

    async fn claim_due(
        &self,
        org: &str,
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<MailboxRow>, RepoError> {
        mailboxes::claim_due(&self.pool, org, limit, hold).await
    }

    async fn schedule_next(&self, mailbox_id: i64, next: NextSync<'_>) -> Result<(), RepoError> {
        mailboxes::schedule_next(&self.pool, mailbox_id, next).await
    }

    async fn reserve_shared_quota(
        &self,
        key: &str,
        units: f64,
        rate: f64,
        burst: f64,
    ) -> Result<f64, RepoError> {
        shared_quota::reserve(&self.pool, key, units, rate, burst).await
    }

    async fn reserve_daily_units(
        &self,
        key: &str,
        day: chrono::NaiveDate,
        units: i64,
        limit: i64,
    ) -> Result<Option<i64>, RepoError> {
        shared_quota::reserve_daily(&self.pool, key, day, units, limit).await
    }

    async fn daily_units(&self, key: &str, day: chrono::NaiveDate) -> Result<i64, RepoError> {
        shared_quota::daily(&self.pool, key, day).await
    }

    async fn mailbox_status(&self) -> Result<Vec<MailboxStatus>, RepoError> {
        mailboxes::status(&self.pool).await
    }

    async fn start_run(&self, start: &RunStart) -> Result<HeldRun, RepoError> {
        runs::start_run(&self.pool, start).await
    }

    async fn heartbeat(&self, fence: Fence) -> Result<bool, RepoError> {
        runs::heartbeat(&self.pool, fence).await
    }

    async fn finish_run(&self, run: &mut HeldRun, end: &RunEnd) -> Result<(), RepoError> {
        runs::finish_run(&self.pool, run, end).await
    }

    async fn begin(&self, fence: Fence) -> Result<Box<dyn RepoTx>, RepoError> {
        let mut tx = self.pool.begin().await.map_err(RepoError::db("begin"))?;
        runs::prove_lease(&mut tx, fence).await?;
        Ok(Box::new(PgTx { tx, fence }))
    }

    async fn thread_history_ids(
        &self,
        mailbox_id: i64,
        provider_thread_ids: &[String],
    ) -> Result<HashMap<String, super::StoredThread>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        thread_history_ids(&mut conn, mailbox_id, provider_thread_ids).await
    }

    async fn stored_thread_message_ids(
        &self,
        mailbox_id: i64,
        provider_thread_id: &str,
    ) -> Result<HashSet<String>, RepoError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT provider_message_id FROM mail_messages
             WHERE mailbox_id = $1 AND provider_thread_id = $2",
        )
        .bind(mailbox_id)
        .bind(provider_thread_id)
        .fetch_all(&self.pool)
        .await
        .map_err(RepoError::db("read a thread's stored message ids"))?;
        Ok(ids.into_iter().collect())
    }

    async fn stored_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        stored_message_ids(&mut conn, mailbox_id, provider_message_ids).await
    }

    async fn stored_labels(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        stored_labels(&mut conn, mailbox_id, provider_message_ids).await
    }

    async fn duplicate_keys(&self) -> Result<Vec<DuplicateKey>, RepoError> {
        verify::duplicate_keys(&self.pool).await
    }

    async fn mailboxes_to_verify(
        &self,
        email: Option<&str>,
    ) -> Result<Vec<(i64, String)>, RepoError> {
        verify::mailboxes_to_verify(&self.pool, email).await
    }

    async fn mailbox_counts(&self, mailbox_id: i64) -> Result<MailboxCounts, RepoError> {
        verify::mailbox_counts(&self.pool, mailbox_id).await
    }

    async fn referenced_blobs(&self, mailbox_id: i64) -> Result<Vec<String>, RepoError> {
        verify::referenced_blobs(&self.pool, mailbox_id).await
    }

    async fn verify_ledger(&self, mailbox_id: i64) -> Result<ledger::ChainReport, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        Ok(ledger::verify(&mut conn, mailbox_id).await?)
    }

    async fn messages_without_ingest_event(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        verify::messages_without_ingest_event(&self.pool, mailbox_id, limit).await
    }

    async fn ingest_events_without_message(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        verify::ingest_events_without_message(&self.pool, mailbox_id, limit).await
    }

    async fn live_messages(
        &self,
        mailbox_id: i64,
    ) -> Result<Vec<(String, Vec<String>)>, RepoError> {
        verify::live_messages(&self.pool, mailbox_id).await
    }

    async fn last_backfill_window(&self, mailbox_id: i64) -> Result<Option<Window>, RepoError> {
        verify::last_backfill_window(&self.pool, mailbox_id).await
    }

    async fn due_quarantined(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<QuarantinedMessage>, RepoError> {
        quarantine::due(&self.pool, mailbox_id, limit).await
    }

    async fn quarantined(
        &self,
        mailbox_id: Option<i64>,
    ) -> Result<Vec<QuarantinedMessage>, RepoError> {
        quarantine::list(&self.pool, mailbox_id).await
    }

    async fn requeue_quarantined(&self, mailbox_id: i64) -> Result<u64, RepoError> {
        quarantine::requeue(&self.pool, mailbox_id).await
    }

    async fn claim_verify(&self, mailbox_id: i64, every: Duration) -> Result<bool, RepoError> {
        verify_runs::claim(&self.pool, mailbox_id, every).await
    }

    async fn record_verify(
        &self,
        mailbox_id: i64,
        started_at: DateTime<Utc>,
        run: &super::VerifyRun,
    ) -> Result<(), RepoError> {
        verify_runs::record(&self.pool, mailbox_id, started_at, run).await
    }

    async fn blob_owners(&self, mailbox_id: i64, sha256: &str) -> Result<Vec<String>, RepoError> {
        repair::blob_owners(&self.pool, mailbox_id, sha256).await
    }

    async fn skipped_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        verify::skipped_message_ids(&self.pool, mailbox_id, provider_message_ids).await
    }
    async fn ledger_head(&self, mailbox_id: i64) -> Result<Option<ledger::ChainHead>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        Ok(ledger::chain_head(&mut conn, mailbox_id).await?)
    }

    async fn ledger_hash_at(&self, mailbox_id: i64, seq: i64) -> Result<Option<String>, RepoError> {
        history::ledger_hash_at(&self.pool, mailbox_id, seq).await
    }

    async fn rows_disagreeing_with_ledger(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<super::RowEventMismatch>, RepoError> {
        history::rows_disagreeing_with_ledger(&self.pool, mailbox_id, limit).await
    }

    async fn message_events_until(
        &self,
        mailbox_id: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<super::MessageEvent>, RepoError> {
        history::message_events_until(&self.pool, mailbox_id, at).await
    }

    async fn export_page(
        &self,
        filter: &super::ExportFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<super::ExportRow>, RepoError> {
        history::export_page(&self.pool, filter, after_id, limit).await
    }

    async fn purge_candidates(
        &self,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<super::PurgeCandidate>, RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        gc::purge::candidates(&mut conn, mailbox_id, deleted_before).await
    }

    async fn blobs_with_rows(&self, sha256s: &[String]) -> Result<HashSet<String>, RepoError> {
        gc::blobs_with_rows(&self.pool, sha256s).await
    }

    async fn begin_gc(&self) -> Result<Box<dyn super::GcTx>, RepoError> {
        let mut tx = self.pool.begin().await.map_err(RepoError::db("begin gc"))?;
        // Its placeholders keep writers off while objects go; a server-side
        // idle timeout ending it silently mid-removal must not apply.
        sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
            .execute(&mut *tx)
            .await
            .map_err(RepoError::db("begin gc"))?;
        // PostgreSQL 17's transaction_timeout likewise (older servers lack it).
        sqlx::query(
            "SELECT set_config('transaction_timeout', '0', true)
             WHERE current_setting('server_version_num')::int >= 170000",
        )
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("begin gc"))?;
        Ok(Box::new(gc::PgGcTx::new(tx)))
    }
}

/// One fenced PostgreSQL transaction (see [`RepoTx`]).
pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    fence: Fence,
}

#[async_trait]
impl RepoTx for PgTx {
    async fn upsert_blobs(&mut self, rows: &[BlobUpsert]) -> Result<Vec<Outcome>, RepoError> {
        upsert_blobs(&mut self.tx, rows).await
    }

    async fn upsert_threads(
        &mut self,
        rows: &[ThreadUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        upsert_threads(&mut self.tx, rows).await
    }

    async fn upsert_messages(
        &mut self,
        rows: &[MessageUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        upsert_messages(&mut self.tx, rows).await
    }

    async fn upsert_attachments(
        &mut self,
        rows: &[AttachmentUpsert],
    ) -> Result<Vec<UpsertResult>, RepoError> {
        upsert_attachments(&mut self.tx, rows).await
    }

    async fn update_labels(&mut self, updates: &[LabelUpdate]) -> Result<Vec<String>, RepoError> {
        update_labels(&mut self.tx, self.fence.mailbox_id, updates).await
    }

    async fn soft_delete_messages(
        &mut self,
        provider_message_ids: &[String],
        deleted_at: DateTime<Utc>,
    ) -> Result<Vec<String>, RepoError> {
        soft_delete_messages(
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
        thread_ids_of_messages(&mut self.tx, self.fence.mailbox_id, provider_message_ids).await
    }

    async fn refresh_threads(&mut self, thread_ids: &[i64]) -> Result<u64, RepoError> {
        refresh_threads(&mut self.tx, thread_ids).await
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
        ledger::append(
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
    ) -> Result<Vec<super::PurgeCandidate>, RepoError> {
        gc::purge::lock_purging(&mut self.tx, self.fence.mailbox_id, sha256s, deleted_before).await
    }

    async fn mark_purged(&mut self, sha256s: &[String]) -> Result<(), RepoError> {
        gc::purge::mark_purged(&mut self.tx, sha256s).await
    }

    async fn commit(self: Box<Self>) -> Result<(), RepoError> {
        self.tx.commit().await.map_err(RepoError::db("commit"))
    }
}
