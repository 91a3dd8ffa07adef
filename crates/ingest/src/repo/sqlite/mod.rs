//! SQLite implementation of the repository: the embedded default, one file
//! and no server, for one host (a person's own archive, a first try, CI).
//!
//! [`SqliteRepository`] implements [`Repository`] with the same schema
//! meaning and the same guarantees as the PostgreSQL backend, enforced by the
//! database where SQLite can (`migrations/sqlite`). Every write transaction
//! begins `IMMEDIATE`: it takes SQLite's single write lock before its first
//! read, so the fence it proves and the chain head it reads stay true until
//! it commits. The statements live in the submodules by concern, as for
//! [`super::pg`]; the run lease is in `runs`.

mod checks;
mod connect;
mod gc;
mod history;
mod mailboxes;
mod quarantine;
mod runs;
pub(crate) mod schema;
mod upserts;

pub use connect::Durability;
mod verify;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::NewEvent;
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::{
    AttachmentUpsert, BlobUpsert, DuplicateKey, Fence, HeldRun, HistoryCursor, LabelUpdate,
    MailboxCounts, MailboxRow, MailboxStatus, MessageFailure, MessageUpsert, NextSync, Outcome,
    QuarantinedMessage, RepoError, RepoTx, Repository, RunEnd, RunStart, StoredThread,
    ThreadUpsert, UpsertResult, VerifyRun, as_i64,
};
use crate::domain::Window;

/// The `strftime` format of timestamps computed in SQL: RFC 3339 UTC, the
/// shape sqlx binds, so stored timestamps compare as text in time order.
pub(crate) const TS: &str = "%Y-%m-%dT%H:%M:%f+00:00";

/// The clock of an embedded database: its one host's.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `at + span`, saturating at the end of year 9999: past it RFC 3339 needs a
/// sign (`+10000-…`), and a signed year would sort before every other time.
pub(crate) fn after(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    let latest = DateTime::<Utc>::from_timestamp(253_402_300_799, 0).unwrap_or(at);
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .map_or(latest, |t| t.min(latest))
}

/// A write transaction holding SQLite's write lock from its first statement.
pub(crate) async fn begin_immediate(
    pool: &SqlitePool,
    operation: &'static str,
) -> Result<Transaction<'static, Sqlite>, RepoError> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(RepoError::db(operation))
}

/// The repository over an SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteRepository {
    pool: SqlitePool,
    path: PathBuf,
    locks: connect::Locks,
}

impl SqliteRepository {
    /// Opens (creating if missing) the database at `path` with a pool of up
    /// to `max_connections`.
    pub async fn open(path: &Path, max_connections: u32) -> Result<Self, RepoError> {
        Self::open_with(path, max_connections, Durability::Full).await
    }

    /// [`SqliteRepository::open`] with a chosen durability (benchmarks).
    pub async fn open_with(
        path: &Path,
        max_connections: u32,
        durability: Durability,
    ) -> Result<Self, RepoError> {
        Ok(SqliteRepository {
            pool: connect::open(path, max_connections, durability).await?,
            path: path.to_owned(),
            locks: connect::Locks::beside(path),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>, RepoError> {
        self.pool.acquire().await.map_err(RepoError::db("acquire"))
    }
}

#[async_trait]
impl Repository for SqliteRepository {
    async fn migrate(&self) -> Result<(), RepoError> {
        let _lock = self.locks.setup().await?;
        schema::migrate(&self.pool)
            .await
            .map_err(RepoError::Migrate)
    }

    async fn register_mailbox(&self, org: &str, email: &str) -> Result<(i64, Outcome), RepoError> {
        let mut tx = begin_immediate(&self.pool, "register mailbox").await?;
        let done = mailboxes::upsert(&mut tx, org, email).await?;
        tx.commit().await.map_err(RepoError::db("commit"))?;
        Ok(done)
    }

    async fn add_mailbox(
        &self,
        org: &str,
        email: &str,
        interval: Option<Duration>,
    ) -> Result<(i64, Outcome), RepoError> {
        let mut tx = begin_immediate(&self.pool, "add mailbox").await?;
        let done = mailboxes::add(&mut tx, org, email, interval).await?;
        tx.commit().await.map_err(RepoError::db("commit"))?;
        Ok(done)
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
        checks::reserve_shared_quota(&self.pool, key, units, rate, burst).await
    }

    async fn reserve_daily_units(
        &self,
        key: &str,
        day: chrono::NaiveDate,
        units: i64,
        limit: i64,
    ) -> Result<Option<i64>, RepoError> {
        checks::reserve_daily_units(&self.pool, key, day, units, limit).await
    }

    async fn daily_units(&self, key: &str, day: chrono::NaiveDate) -> Result<i64, RepoError> {
        checks::daily_units(&self.pool, key, day).await
    }

    async fn mailbox_status(&self) -> Result<Vec<MailboxStatus>, RepoError> {
        mailboxes::status(&self.pool).await
    }

    async fn start_run(&self, start: &RunStart) -> Result<HeldRun, RepoError> {
        runs::start_run(&self.pool, &self.locks, start).await
    }

    async fn heartbeat(&self, fence: Fence) -> Result<bool, RepoError> {
        runs::heartbeat(&self.pool, fence).await
    }

    async fn finish_run(&self, run: &mut HeldRun, end: &RunEnd) -> Result<(), RepoError> {
        runs::finish_run(&self.pool, run, end).await
    }

    async fn begin(&self, fence: Fence) -> Result<Box<dyn RepoTx>, RepoError> {
        let mut tx = begin_immediate(&self.pool, "begin").await?;
        runs::prove_lease(&mut tx, fence).await?;
        Ok(Box::new(SqliteTx { tx, fence }))
    }

    async fn thread_history_ids(
        &self,
        mailbox_id: i64,
        provider_thread_ids: &[String],
    ) -> Result<HashMap<String, StoredThread>, RepoError> {
        upserts::thread_history_ids(&mut *self.conn().await?, mailbox_id, provider_thread_ids).await
    }

    async fn stored_thread_message_ids(
        &self,
        mailbox_id: i64,
        provider_thread_id: &str,
    ) -> Result<HashSet<String>, RepoError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT provider_message_id FROM mail_messages
             WHERE mailbox_id = ?1 AND provider_thread_id = ?2",
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
        upserts::stored_message_ids(&mut *self.conn().await?, mailbox_id, provider_message_ids)
            .await
    }

    async fn stored_labels(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, RepoError> {
        upserts::stored_labels(&mut *self.conn().await?, mailbox_id, provider_message_ids).await
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
        checks::claim_verify(&self.pool, mailbox_id, every).await
    }

    async fn record_verify(
        &self,
        mailbox_id: i64,
        started_at: DateTime<Utc>,
        run: &VerifyRun,
    ) -> Result<(), RepoError> {
        checks::record_verify(&self.pool, mailbox_id, started_at, run).await
    }

    async fn blob_owners(&self, mailbox_id: i64, sha256: &str) -> Result<Vec<String>, RepoError> {
        verify::blob_owners(&self.pool, mailbox_id, sha256).await
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
        Ok(ledger::sqlite::verify(&mut *self.conn().await?, mailbox_id).await?)
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

    async fn skipped_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        verify::skipped_message_ids(&self.pool, mailbox_id, provider_message_ids).await
    }
    async fn ledger_head(&self, mailbox_id: i64) -> Result<Option<ledger::ChainHead>, RepoError> {
        Ok(ledger::sqlite::chain_head(&mut *self.conn().await?, mailbox_id).await?)
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
        let mut conn = self.conn().await?;
        gc::purge::candidates(&mut conn, mailbox_id, deleted_before).await
    }

    async fn blobs_with_rows(&self, sha256s: &[String]) -> Result<HashSet<String>, RepoError> {
        let mut conn = self.conn().await?;
        gc::blobs_with_rows(&mut conn, sha256s).await
    }

    async fn begin_gc(&self) -> Result<Box<dyn super::GcTx>, RepoError> {
        let tx = begin_immediate(&self.pool, "begin gc").await?;
        Ok(Box::new(gc::SqliteGcTx::new(tx)))
    }
}

/// One fenced SQLite write transaction (see [`RepoTx`]).
pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    fence: Fence,
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
