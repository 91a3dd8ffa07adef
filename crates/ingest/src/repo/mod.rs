//! The repository boundary: every SQL statement of ingest lives behind it.
//!
//! The database is seen through role traits, one file each: [`Mailboxes`],
//! [`Runs`], [`PlanReads`], [`Quarantine`], [`QuotaBudget`],
//! [`VerifySchedule`], [`AuditReads`], [`LedgerHistory`], [`ExportReads`],
//! [`LabelReads`], [`OrphanReads`], [`GcStore`] and [`ChangeFeed`]; [`Repository`] is all of them at once (what a run, the worker
//! and the commands hold), and [`RepoTx`] is one fenced transaction that
//! writes a batch of rows, their ledger events, the run's counts and the
//! cursor together. A consumer that needs one role takes that role. The
//! engines see only these traits and the backend-neutral `domain` values
//! (`ThreadUpsert`, `MessageUpsert`, `RunStatus`, …), so a second backend implements the
//! traits and passes the same tests; each backend implements a role in the
//! file that holds that role's SQL, and both backends hold the same files.
//! [`PgRepository`] is the PostgreSQL implementation (production: many
//! workers, many hosts), [`SqliteRepository`] the embedded one (one file, no
//! server: the default). Their modules are private but for `pg`'s two
//! upserts the race test drives below the run lease.
//!
//! Every write is one statement per batch of the shape
//! `INSERT … ON CONFLICT (natural key) DO UPDATE … WHERE (row differs)`, so the
//! database, not this code, decides between insert and update, concurrent
//! writers cannot duplicate a row, and an unchanged re-run writes nothing.

mod audit;
mod batch;
mod edited_migrations;
mod error;
mod export;
pub(crate) mod feed;
mod gc;
mod history;
pub(crate) mod labels;
mod mailboxes;
mod model;
mod orphans;
pub mod pg;
mod plan_reads;
pub mod quarantine;
mod quota;
mod rows;
mod runs;
mod sql;
mod sqlite;
mod target;
mod text;
pub(crate) mod tx;
mod verify_schedule;

use async_trait::async_trait;

pub use audit::AuditReads;
pub use error::RepoError;
pub(crate) use error::as_i64;
pub use export::{ExportFilter, ExportReads, ExportRow};
pub use feed::{ChangeFeed, ConsumerPosition, FeedMailbox, FeedRow, HeldConsumer, LedgerWaiter};
pub use gc::{GcStore, GcTx};
pub(crate) use history::{EventRow, history_event};
pub use history::{LedgerHistory, MailboxState, MessageEvent, MessageState, RowEventMismatch};
pub use labels::{LabelReads, MailboxLabelRow};
pub use mailboxes::Mailboxes;
pub use model::{
    CursorUpdate, Degraded, DuplicateKey, Fence, HeldRun, HistoryCursor, MailboxCounts, MailboxRow,
    MailboxStatus, NextSync, RunEnd, RunStart, VerifyRun,
};
pub use orphans::OrphanReads;
pub use pg::{PgRepository, PgTx};
pub use plan_reads::PlanReads;
pub use quarantine::{Quarantine, QuarantinedMessage};
pub use quota::QuotaBudget;
pub use rows::{PurgeCandidate, StoredThread};
pub use runs::Runs;
pub use sqlite::{Durability, SqliteRepository, SqliteTx};
pub use target::DatabaseTarget;
pub(crate) use text::strip_nul;
pub use tx::RepoTx;
pub use verify_schedule::VerifySchedule;

// The domain values this boundary speaks, under the paths callers knew
// before they moved to `domain`.
pub use crate::domain::{
    AttachmentUpsert, BlobUpsert, Coverage, FailureKind, LabelUpdate, MessageFailure,
    MessageUpsert, Outcome, OutcomeCounts, RunKind, RunStatus, ThreadUpsert, UnknownValue,
    UpsertResult,
};

/// Every role trait of the repository, for `use repo::prelude::*`: a method
/// of a role is callable on an `Arc<dyn Repository>` only with its trait in
/// scope.
pub mod prelude {
    pub use super::{
        AuditReads, ChangeFeed, ExportReads, GcStore, GcTx, LabelReads, LedgerHistory, Mailboxes,
        OrphanReads, PlanReads, Quarantine, QuotaBudget, RepoTx, Repository, Runs, VerifySchedule,
    };
}

/// The database as the rest of ingest sees it: every role at once, so an
/// `Arc<dyn Repository>` serves the engines, the worker and the commands.
/// Methods that write a mailbox's mail take a [`Fence`] (through
/// [`Runs::begin`] or [`Runs::finish_run`]) and commit nothing once the run
/// has lost it.
#[async_trait]
pub trait Repository:
    Mailboxes
    + QuotaBudget
    + Runs
    + PlanReads
    + Quarantine
    + VerifySchedule
    + AuditReads
    + LedgerHistory
    + ExportReads
    + LabelReads
    + OrphanReads
    + GcStore
    + ChangeFeed
    + Send
    + Sync
    + 'static
{
    /// Applies the embedded schema; harmless when it is current.
    async fn migrate(&self) -> Result<(), RepoError>;
}
