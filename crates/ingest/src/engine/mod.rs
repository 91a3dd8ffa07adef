//! The engines: backfill of a window and incremental sync from a history
//! cursor, both built on one pipeline (list → fetch → write) and one run lease.

mod backfill;
mod error;
mod progress;
mod run;
mod summary;
mod sync;
mod thread_fetch;
mod window;
mod writer;

use std::time::Duration;

use sqlx::PgPool;

pub use backfill::BackfillRequest;
pub use error::EngineError;
pub use progress::{Progress, ProgressSnapshot};
pub use run::{CursorUpdate, RUN_LOCK_CLASS, RunKind, RunLease, RunStatus};
pub use summary::{BlobCounts, RunSummary, Skipped, Tally};
pub use sync::SyncRequest;
pub use window::Window;

/// Tuning knobs; the defaults suit one mailbox on a small machine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Threads being fetched at once (the client also caps requests per mailbox).
    pub threads_in_flight: usize,
    /// Messages per database transaction (whole threads; a batch may exceed it by one thread).
    pub batch_messages: usize,
    /// A live run whose heartbeat is older than this is taken over.
    pub lease: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads_in_flight: 16,
            batch_messages: 500,
            lease: Duration::from_secs(120),
        }
    }
}

/// Everything a run needs: the database, the Gmail client and the store.
#[derive(Clone)]
pub struct Engine {
    pub pool: PgPool,
    pub gmail: gmail::GmailClient,
    pub store: store::BlobStore,
    /// The organisation owning the mailboxes this engine registers.
    pub org: String,
    pub options: EngineOptions,
}

#[cfg(test)]
mod send_check {
    use super::*;
    fn assert_send<T: Send>(_: T) {}
    #[allow(dead_code)]
    fn futures_are_send(e: &'static Engine, p: &'static Progress) {
        assert_send(e.sync(
            SyncRequest {
                mailbox: String::new(),
                fallback_days: 1,
            },
            tokio_util::sync::CancellationToken::new(),
            p,
        ));
    }
}
