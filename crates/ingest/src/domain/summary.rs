//! The run summary: what a run did, as the CLI prints it (`--json`: one
//! object), the worker reads it and `sync_runs.counts` stores its [`Tally`].
//! The engines fill it; its verdict is in `verdict`.

use serde::Serialize;

use super::{FailureKind, LabelChange, OutcomeCounts, RunKind, RunStatus, Window};

/// Objects written to the store vs found already there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlobCounts {
    pub stored: u64,
    pub deduplicated: u64,
}

/// A message the run could not ingest, and why. The run still completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub message_id: String,
    pub kind: SkipKind,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// The archived raw bytes, when the message was fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
}

/// Why a message was skipped: gone from Gmail, or quarantined for a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SkipKind {
    /// Gmail no longer has it (404 between listing and fetch): nothing to retry.
    Gone,
    /// Quarantined: Gmail or our code refused this very message.
    Rejected,
    /// Quarantined: retries on its id were exhausted; the next run tries again.
    Unavailable,
}

impl SkipKind {
    /// The quarantine entry this skip makes, if any.
    pub fn failure(self) -> Option<FailureKind> {
        match self {
            SkipKind::Gone => None,
            SkipKind::Rejected => Some(FailureKind::Rejected),
            SkipKind::Unavailable => Some(FailureKind::Unavailable),
        }
    }
}

impl Skipped {
    /// A message Gmail no longer has.
    pub(crate) fn gone(message_id: String, reason: &str) -> Self {
        Skipped {
            message_id,
            kind: SkipKind::Gone,
            reason: reason.to_owned(),
            thread_id: None,
            raw_sha256: None,
        }
    }
}

/// Everything a run counted; also stored as `sync_runs.counts`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub threads: OutcomeCounts,
    pub messages: OutcomeCounts,
    pub attachments: OutcomeCounts,
    pub blobs: BlobCounts,
    pub threads_listed: u64,
    pub threads_fetched: u64,
    pub messages_fetched: u64,
    pub labels_changed: u64,
    pub messages_deleted: u64,
    pub history_pages: u64,
    pub history_records: u64,
    pub skipped: Vec<Skipped>,
    /// Labels created, renamed, changed or deleted in Gmail since the last
    /// run (by labels.list at the run's start), with their names.
    pub label_changes: Vec<LabelChange>,
    /// Archive entries an import kept as orphans (`--keep-unmatched`):
    /// inserted, or `unchanged` when the mailbox kept their bytes already.
    #[serde(skip_serializing_if = "no_outcomes")]
    pub orphans: OutcomeCounts,
}

fn no_outcomes(c: &OutcomeCounts) -> bool {
    *c == OutcomeCounts::default()
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.threads.add(&other.threads);
        self.messages.add(&other.messages);
        self.attachments.add(&other.attachments);
        self.blobs.stored += other.blobs.stored;
        self.blobs.deduplicated += other.blobs.deduplicated;
        self.threads_listed += other.threads_listed;
        self.threads_fetched += other.threads_fetched;
        self.messages_fetched += other.messages_fetched;
        self.labels_changed += other.labels_changed;
        self.messages_deleted += other.messages_deleted;
        self.history_pages += other.history_pages;
        self.history_records += other.history_records;
        self.skipped.extend(other.skipped);
        self.label_changes.extend(other.label_changes);
        self.orphans.add(&other.orphans);
    }
}

/// The summary of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: i64,
    pub mailbox: String,
    pub kind: RunKind,
    pub status: RunStatus,
    pub window: Option<Window>,
    #[serde(flatten)]
    pub tally: Tally,
    /// Set when a sync found its history expired and fell back to a backfill.
    pub history_expired: bool,
    pub cursor: Option<String>,
    pub api: gmail::ApiMetrics,
    pub duration_ms: u64,
    /// Busy seconds per stage, summed over concurrent work (so each may
    /// exceed the run's duration): where a slow run spends its time.
    pub stages: StageSeconds,
    pub error: Option<String>,
    /// Set when the run stopped because the project's quota day is spent: seconds until
    /// it rolls over (midnight Pacific time), when the mailbox can go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_day_resets_in_secs: Option<u64>,
    /// The mailbox's ledger head after the run: anchor it anywhere, and
    /// `verify --expect-head SEQ:HASH` proves the chain still extends it.
    pub ledger_head: Option<ledger::ChainHead>,
    /// Set when `--anchor-to` could not record the head (the run's data is
    /// committed all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor_error: Option<String>,
}

/// Busy seconds per pipeline stage (see [`RunSummary::stages`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageSeconds {
    /// Listing: threads.list, messages.list, history.list, and deciding what changed.
    pub list: f64,
    /// Gmail gets: threads.get and messages.get.
    pub fetch: f64,
    /// MIME parsing.
    pub parse: f64,
    /// Blob puts and store syncs.
    pub store: f64,
    /// Batch transactions.
    pub write: f64,
}
