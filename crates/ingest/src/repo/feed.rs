//! The change feed as the database holds it ([`ChangeFeed`]): an org's
//! mailboxes with their ledger heads, a mailbox's events after a position
//! with what a consumer needs to know about each without asking again, and
//! named consumers: one live process each (held like a run), and their
//! acknowledged positions, one per mailbox, moved forward only by a fenced
//! transaction.
//!
//! A position is per mailbox because that is the order the ledger keeps:
//! `seq` is contiguous per mailbox and a mailbox's events commit in seq order
//! (the chain lock), so "the events of M after seq P" never passes over one
//! that commits later. See `migrations/postgres/20261208000030_change_feed.sql`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::EventType;

use super::RepoError;

/// A mailbox of the org and the seq of its last ledger event (0: none yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMailbox {
    pub id: i64,
    pub email: String,
    pub head: i64,
}

/// One ledger event as the feed reads it, with the stored facts about its
/// message (or attachment) a consumer would otherwise query for.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRow {
    pub mailbox_id: i64,
    pub seq: i64,
    pub run_id: i64,
    pub event_type: EventType,
    pub subject_key: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub hash: String,
    /// The Gmail thread of the event's message (from the row; it never changes).
    pub thread_id: Option<String>,
    /// The raw message's sha256 and its key in the store.
    pub raw_sha256: Option<String>,
    pub raw_store_key: Option<String>,
    /// `attachment.saved`: the part's blob key in the store.
    pub part_store_key: Option<String>,
}

/// A consumer taken by this process: its id, its fencing token, the
/// positions it starts from, and what keeps other processes out (a session
/// advisory lock on a dedicated PostgreSQL connection, or a lock file).
pub struct HeldConsumer {
    pub id: i64,
    pub name: String,
    pub token: String,
    /// mailbox id → last acknowledged seq.
    pub positions: BTreeMap<i64, i64>,
    pub(crate) guard: ConsumerGuard,
}

impl std::fmt::Debug for HeldConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldConsumer")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What holds a consumer for its process; dropping it lets the next one in.
pub(crate) enum ConsumerGuard {
    Pg(tokio::sync::Mutex<sqlx::PgConnection>),
    Sqlite(#[allow(dead_code)] std::fs::File),
}

/// A consumer's place in one mailbox, for `status` and `/metrics`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConsumerPosition {
    pub org: String,
    pub consumer: String,
    pub mailbox: String,
    /// Last acknowledged seq (0: nothing yet).
    pub seq: i64,
    /// The mailbox's ledger head.
    pub head: i64,
    pub acked_at: Option<DateTime<Utc>>,
    /// When the oldest event not yet acknowledged committed (`None`: none).
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

impl ConsumerPosition {
    /// Events committed and not yet acknowledged.
    pub fn lag_events(&self) -> i64 {
        (self.head - self.seq).max(0)
    }

    /// How long the oldest unacknowledged event has waited.
    pub fn lag_seconds(&self, now: DateTime<Utc>) -> f64 {
        self.oldest_pending_at
            .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0))
    }
}

/// Blocks until ledger events may have committed: PostgreSQL's
/// LISTEN/NOTIFY, a short poll on SQLite.
#[async_trait]
pub trait LedgerWaiter: Send {
    /// Returns after a commit was announced, or after `at_most`.
    async fn wait(&mut self, at_most: Duration) -> Result<(), RepoError>;
}

/// The change feed's reads and the consumers' positions.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// The org's mailboxes with their ledger heads, by id.
    async fn feed_mailboxes(&self, org: &str) -> Result<Vec<FeedMailbox>, RepoError>;

    /// Up to `limit` events of `mailbox_id` with seq above `after`, in seq order.
    async fn feed_events(
        &self,
        mailbox_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<FeedRow>, RepoError>;

    /// The names of `label_ids` in `mailbox_id`: id → name.
    ///
    /// This is the ONE place the feed turns label ids into names: the names
    /// `mailbox_labels` holds now (a rename shows in later deliveries; the
    /// `label.renamed` event says when); an id it lacks stays its own name.
    async fn label_names(
        &self,
        mailbox_id: i64,
        label_ids: &[String],
    ) -> Result<HashMap<String, String>, RepoError>;

    /// Takes consumer `name` of `org` (created on first use) for this
    /// process, with a new fencing token. [`RepoError::ConsumerBusy`] while
    /// another live process holds it.
    async fn hold_consumer(&self, org: &str, name: &str) -> Result<HeldConsumer, RepoError>;

    /// Moves the consumer's positions forward to `positions` (mailbox id,
    /// seq), in one transaction that proves the consumer's token is still
    /// the live one ([`RepoError::ConsumerFenced`] otherwise). A position
    /// never moves back.
    async fn ack_consumer(
        &self,
        held: &HeldConsumer,
        positions: &[(i64, i64)],
    ) -> Result<(), RepoError>;

    /// Whether this process still holds the consumer (its lock and its
    /// token): checked before each delivery, so a process that lost it
    /// delivers nothing more.
    async fn consumer_still_held(&self, held: &HeldConsumer) -> Result<bool, RepoError>;

    /// Every consumer of `org` and its position in every mailbox of the org.
    async fn consumer_positions(&self, org: &str) -> Result<Vec<ConsumerPosition>, RepoError>;

    /// Something to wait on for new ledger commits (`changes --follow`).
    async fn ledger_waiter(&self) -> Result<Box<dyn LedgerWaiter>, RepoError>;
}

/// A fencing token no other holder has: 32 hex digits.
pub(crate) fn new_token(consumer_id: i64) -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "feed/{}/{}/{consumer_id}/{:?}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}
