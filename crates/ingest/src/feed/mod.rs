//! The change feed (`mailingest changes`): an org's ledger events handed
//! downstream, at least once, in seq order per mailbox, never with a gap.
//!
//! * [`event`]: what one event looks like to a consumer (the versioned JSON
//!   schema the README documents).
//! * [`reader`]: the org's events in commit order from a position per
//!   mailbox (why per mailbox: `repo::feed`).
//! * [`webhook`]: the HTTP sink: signed batches, retries, Retry-After.
//! * [`deliver`]: the loop: read, deliver, acknowledge, wait for commits.

pub mod deliver;
pub mod event;
pub mod reader;
pub mod webhook;

pub use deliver::{Delivery, Sink, deliver};
pub use event::{FeedEvent, SCHEMA_VERSION};
pub use reader::{FeedReader, Start};
pub use webhook::{SIGNATURE_HEADER, WebhookConfig, WebhookSink};

use crate::repo::RepoError;

/// Why the feed stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The sink's configuration cannot work (a usage error).
    #[error("{0}")]
    Config(String),
    /// The receiver refused a batch for good (a 4xx other than 429, or an
    /// answer that is not a success): the position stays before it.
    #[error(
        "the receiver at {host} answered {status} to the batch starting at event {first} (through {last}); stopped there, nothing after it acknowledged"
    )]
    Rejected {
        host: String,
        status: u16,
        first: String,
        last: String,
    },
    /// The receiver stayed unreachable (or kept failing) past the outage budget.
    #[error(
        "the receiver at {host} kept failing for {budget_secs}s ({last_failure}); stopped before event {first}; run again to resume there"
    )]
    Unreachable {
        host: String,
        budget_secs: u64,
        last_failure: String,
        first: String,
    },
    /// Writing events to the output failed (a closed pipe).
    #[error("writing events: {0}")]
    Output(#[source] std::io::Error),
}
