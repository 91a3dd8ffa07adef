//! The engines: backfill of a window and incremental sync from a history
//! cursor. Both are bodies run by one lifecycle (`run`, over `lease`: lease,
//! fence, heartbeat, finish; gc's purge runs hold their lease through it too)
//! and both feed one committer (`commit`: one fenced transaction per batch). Neither sees SQL: they talk to the repository traits.

mod backfill;
mod commit;
mod error;
mod estimate;
mod import;
mod import_labels;
mod label_source;
mod labels;
mod lease;
mod memory;
mod orphans;
mod outage;
mod progress;
mod quarantine;
mod run;
mod summary;
mod sync;
mod thread_fetch;
mod vanished;
mod writer;

use std::sync::Arc;
use std::time::Duration;

// The domain values a run speaks, under the paths callers knew before they
// moved to `domain`.
pub use crate::domain::{
    BlobCounts, RunKind, RunStatus, RunSummary, RunVerdict, SkipKind, Skipped, StageSeconds, Tally,
    Window,
};
pub use backfill::BackfillRequest;
pub use error::EngineError;
pub use estimate::BackfillEstimate;
pub use import::{EntryNote, ImportReport, ImportRequest, ImportedFile, SkippedEntry};
pub(crate) use lease::{DEFAULT_DB_OUTAGE, DEFAULT_LEASE, RunLease, is_lease_lost};
pub use memory::MessageMemory;
pub use orphans::KeptEntry;
pub use progress::{Progress, ProgressSnapshot};
pub use sync::SyncRequest;
pub(crate) use thread_fetch::is_spam_or_trash;

use crate::domain::MailboxAddress;
pub use crate::repo::CursorUpdate;
use crate::repo::Repository;
pub use crate::repo::pg::RUN_LOCK_CLASS;

/// Tuning knobs; the defaults suit one mailbox on a small machine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Threads being fetched at once (the client also caps requests per mailbox).
    pub threads_in_flight: usize,
    /// Messages per database transaction (whole threads; a batch may exceed it by one thread).
    pub batch_messages: usize,
    /// A live run whose heartbeat is older than this is taken over.
    pub lease: Duration,
    /// How long a database outage (restart, failover, dropped connections)
    /// is ridden out before the run fails.
    pub db_outage: Duration,
    /// Bytes of messages being fetched and archived at once, shared by every
    /// clone of the engine (see `memory`).
    pub message_memory: MessageMemory,
    /// Where batch commit latencies go (`worker --metrics-addr`).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Where each run's ledger head is appended (`--anchor-to`).
    pub anchor: Option<crate::anchor::AnchorTarget>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads_in_flight: 16,
            batch_messages: 500,
            lease: DEFAULT_LEASE,
            db_outage: DEFAULT_DB_OUTAGE,
            message_memory: MessageMemory::default(),
            metrics: None,
            anchor: None,
        }
    }
}

/// Which mailbox a run works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxRef {
    /// An address in the engine's org, registered if new (the CLI's case).
    Address(MailboxAddress),
    /// A mailbox row already known, worked on by its id as it is (the
    /// worker's case: the row it claimed, never looked up again).
    Known {
        id: i64,
        org: String,
        email: MailboxAddress,
    },
}

impl MailboxRef {
    pub fn address(email: &str) -> Self {
        MailboxRef::Address(MailboxAddress::normalized(email))
    }

    pub fn email(&self) -> &str {
        match self {
            MailboxRef::Address(email) | MailboxRef::Known { email, .. } => email.as_str(),
        }
    }
}

/// Everything a run needs: the database, the Gmail client and the store.
#[derive(Clone)]
pub struct Engine {
    pub repo: Arc<dyn Repository>,
    pub gmail: gmail::GmailClient,
    pub store: store::BlobStore,
    /// The organisation owning the mailboxes this engine registers.
    pub org: String,
    pub options: EngineOptions,
}

impl Engine {
    /// The mailbox's row id and address, registering an address if new.
    pub(crate) async fn resolve(
        &self,
        mailbox: &MailboxRef,
    ) -> Result<(i64, MailboxAddress), EngineError> {
        match mailbox {
            MailboxRef::Address(email) => {
                let (id, _) = self
                    .repo
                    .register_mailbox(&self.org, email.as_str())
                    .await?;
                Ok((id, email.clone()))
            }
            MailboxRef::Known { org, email, .. } if *org != self.org => {
                Err(EngineError::ForeignMailbox {
                    mailbox: email.to_string(),
                    owner: org.clone(),
                    engine_org: self.org.clone(),
                })
            }
            MailboxRef::Known { id, email, .. } => Ok((*id, email.clone())),
        }
    }
}

#[cfg(test)]
mod send_check {
    use super::*;
    fn assert_send<T: Send>(_: T) {}
    #[allow(dead_code)]
    fn futures_are_send(e: &'static Engine, p: &'static Progress) {
        assert_send(e.sync(
            SyncRequest {
                mailbox: MailboxRef::address("a@example.com"),
                fallback_days: 1,
            },
            tokio_util::sync::CancellationToken::new(),
            p,
        ));
        assert_send(e.backfill(
            BackfillRequest {
                mailbox: MailboxRef::address("a@example.com"),
                window: Window::last_days(1, chrono::Utc::now()).expect("window"),
                include_spam_trash: false,
            },
            tokio_util::sync::CancellationToken::new(),
            p,
        ));
    }
}
