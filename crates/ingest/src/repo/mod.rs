//! The repository boundary: every SQL statement of ingest lives behind it.
//!
//! Two traits, shaped like object_store's: [`Repository`] for what a run, the
//! worker, `status` and `verify` read and decide, and [`RepoTx`] for one
//! fenced transaction that writes a batch of rows, their ledger events, the
//! run's counts and the cursor together. The engines see only these traits and
//! the backend-neutral row types (`ThreadUpsert`, `MessageUpsert`, …), so a
//! second backend implements the traits and passes the same tests.
//! [`pg`] is the PostgreSQL implementation (production: many workers, many
//! hosts), [`sqlite`] the embedded one (one file, no server: the default).
//!
//! Every write is one statement per batch of the shape
//! `INSERT … ON CONFLICT (natural key) DO UPDATE … WHERE (row differs)`, so the
//! database, not this code, decides between insert and update, concurrent
//! writers cannot duplicate a row, and an unchanged re-run writes nothing.

mod batch;
mod error;
mod export;
mod history;
mod model;
mod outcome;
pub mod pg;
pub mod quarantine;
mod rows;
mod shared;
pub mod sqlite;
mod target;
mod text;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::NewEvent;

pub use error::RepoError;
pub(crate) use error::as_i64;
pub use export::{ExportFilter, ExportRow};
pub use history::{MailboxState, MessageEvent, MessageState, RowEventMismatch};
pub use model::{
    CursorUpdate, Degraded, DuplicateKey, Fence, HeldRun, HistoryCursor, MailboxCounts, MailboxRow,
    MailboxStatus, NextSync, RunEnd, RunKind, RunStart, RunStatus, UnknownValue, VerifyRun,
};
pub use outcome::{Outcome, OutcomeCounts, UpsertResult};
pub use quarantine::{FailureKind, MessageFailure, QuarantinedMessage};
pub use rows::{
    AttachmentUpsert, BlobUpsert, Coverage, LabelUpdate, MessageUpsert, PurgeCandidate,
    StoredThread, ThreadUpsert,
};
pub use target::DatabaseTarget;
pub(crate) use text::strip_nul;

use crate::domain::Window;

/// The database as the rest of ingest sees it. Methods that write a mailbox's
/// mail take a [`Fence`] (through [`Repository::begin`] or
/// [`Repository::finish_run`]) and commit nothing once the run has lost it.
#[async_trait]
pub trait Repository: Send + Sync + 'static {
    /// Applies the embedded schema; harmless when it is current.
    async fn migrate(&self) -> Result<(), RepoError>;

    // Mailboxes and their schedule.

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
    /// Every mailbox of every org, ordered by org and address.
    async fn list_mailboxes(&self) -> Result<Vec<MailboxRow>, RepoError>;
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
    /// Debits `units` from the shared quota bucket `key` (refilled at `rate`
    /// units/s, holding at most `burst`), creating it full if new; returns the
    /// units left, negative when the caller must wait for them.
    async fn reserve_shared_quota(
        &self,
        key: &str,
        units: f64,
        rate: f64,
        burst: f64,
    ) -> Result<f64, RepoError>;
    /// Adds `units` to budget `key`'s quota `day` unless that would carry its
    /// total past `limit`; returns the day's new total, `None` when refused
    /// (nothing added).
    async fn reserve_daily_units(
        &self,
        key: &str,
        day: chrono::NaiveDate,
        units: i64,
        limit: i64,
    ) -> Result<Option<i64>, RepoError>;
    /// Units budget `key` reserved on quota `day` (0 when none).
    async fn daily_units(&self, key: &str, day: chrono::NaiveDate) -> Result<i64, RepoError>;
    /// Per mailbox: schedule, cursor age, stored counts and the last run.
    async fn mailbox_status(&self) -> Result<Vec<MailboxStatus>, RepoError>;

    // The run lifecycle.

    /// Takes the mailbox for a new run: marks runs whose process died
    /// interrupted, records the run and its `sync.started` event. Fails with
    /// [`RepoError::Locked`] while another live run holds the mailbox.
    async fn start_run(&self, start: &RunStart) -> Result<HeldRun, RepoError>;
    /// Proves the run alive for `status` and for takeover; false once it has lost the mailbox.
    async fn heartbeat(&self, fence: Fence) -> Result<bool, RepoError>;
    /// Ends the run (status, counts, terminal event, cursor) in one fenced
    /// transaction and releases the mailbox. May be called again after a
    /// failure: a run already ended is fenced out, never ended twice.
    async fn finish_run(&self, run: &mut HeldRun, end: &RunEnd) -> Result<(), RepoError>;
    /// Opens a write transaction that proves, inside itself, that the run
    /// still holds its mailbox ([`RepoError::LeaseLost`] otherwise).
    async fn begin(&self, fence: Fence) -> Result<Box<dyn RepoTx>, RepoError>;

    // Reads the engines plan with.

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
    /// The stored labels of each of the given messages that is stored
    /// (deleted or not), in their stored order.
    async fn stored_labels(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, RepoError>;

    // The quarantine (see [`quarantine`]).

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

    // Scheduled completeness checks.

    /// Takes the mailbox's completeness check if due (moving the next one
    /// `every` on); false when not due or another worker took it.
    async fn claim_verify(&self, mailbox_id: i64, every: Duration) -> Result<bool, RepoError>;
    /// Records a completeness check that started at `started_at`.
    async fn record_verify(
        &self,
        mailbox_id: i64,
        started_at: DateTime<Utc>,
        run: &VerifyRun,
    ) -> Result<(), RepoError>;

    // What `repair` needs.

    /// Messages of the mailbox whose raw bytes are the blob `sha256`, then
    /// those with a part that is (up to 20).
    async fn blob_owners(&self, mailbox_id: i64, sha256: &str) -> Result<Vec<String>, RepoError>;

    // What `verify` checks.

    /// Natural keys present more than once, over the whole database.
    async fn duplicate_keys(&self) -> Result<Vec<DuplicateKey>, RepoError>;
    /// (id, address) of the mailboxes with this address in any org, or of all.
    async fn mailboxes_to_verify(
        &self,
        email: Option<&str>,
    ) -> Result<Vec<(i64, String)>, RepoError>;
    async fn mailbox_counts(&self, mailbox_id: i64) -> Result<MailboxCounts, RepoError>;
    /// Every sha256 a row of the mailbox references (raw messages and parts),
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
    /// The window of the mailbox's last completed backfill.
    async fn last_backfill_window(&self, mailbox_id: i64) -> Result<Option<Window>, RepoError>;
    /// Which of the given messages the ledger records as skipped.
    async fn skipped_message_ids(
        &self,
        mailbox_id: i64,
        provider_message_ids: &[String],
    ) -> Result<HashSet<String>, RepoError>;

    // The anchored ledger and the mailbox's past.

    /// The last event of the mailbox's chain.
    async fn ledger_head(&self, mailbox_id: i64) -> Result<Option<ledger::ChainHead>, RepoError>;
    /// The stored hash of the mailbox's event at `seq`, if there is one.
    async fn ledger_hash_at(&self, mailbox_id: i64, seq: i64) -> Result<Option<String>, RepoError>;
    /// Stored messages whose raw bytes differ from what their latest
    /// `message.ingested` event recorded (up to `limit`).
    async fn rows_disagreeing_with_ledger(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<RowEventMismatch>, RepoError>;
    /// The mailbox's message events (ingested, labels changed, deleted)
    /// recorded at or before `at`, in chain order.
    async fn message_events_until(
        &self,
        mailbox_id: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<MessageEvent>, RepoError>;

    // What `export` reads.

    /// Up to `limit` messages the filter selects with a row id above
    /// `after_id`, in row id order.
    async fn export_page(
        &self,
        filter: &ExportFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ExportRow>, RepoError>;

    // What `gc` needs (see crate::gc for the protocol).

    /// What `gc --purge-deleted-older-than --dry-run` would remove for the
    /// mailbox (the predicate of [`RepoTx::mark_purging`], read only).
    async fn purge_candidates(
        &self,
        mailbox_id: i64,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, RepoError>;
    /// Of these hashes, those that have a `blobs` row.
    async fn blobs_with_rows(&self, sha256s: &[String]) -> Result<HashSet<String>, RepoError>;
    /// Opens the transaction in which garbage collection removes objects.
    async fn begin_gc(&self) -> Result<Box<dyn GcTx>, RepoError>;
}

/// Garbage collection's transaction. [`GcTx::claim_unrecorded`] inserts a
/// placeholder row for each hash that has none: a writer recording one of
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

/// A message event row as both backends read it: (seq, type, subject,
/// label ids as JSON text, created_at).
pub(crate) type EventRow = (i64, String, String, Option<String>, DateTime<Utc>);

pub(crate) fn history_event(
    (seq, event_type, subject_key, labels, created_at): EventRow,
) -> Result<MessageEvent, RepoError> {
    let event_type = event_type.parse().map_err(|_| {
        RepoError::Corrupt(format!("ledger event {seq}: unknown type {event_type:?}"))
    })?;
    let label_ids = labels
        .map(|l| serde_json::from_str(&l))
        .transpose()
        .map_err(|e| RepoError::Corrupt(format!("ledger event {seq}: label_ids: {e}")))?;
    Ok(MessageEvent {
        seq,
        event_type,
        subject_key,
        label_ids,
        created_at,
    })
}

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
