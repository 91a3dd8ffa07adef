//! Riding out a database outage: a restart, a failover or a dropped
//! connection fails a statement with a connection-class error, which goes
//! away by itself. Such work is retried with backoff for a bounded time
//! (`EngineOptions::db_outage`); only after that does the run fail.
//!
//! Retrying is safe because everything retried is a read, a whole batch
//! transaction or a run's finish, and each is idempotent: an upsert replayed
//! changes nothing, a transaction that did not commit left nothing, and the
//! replay proves the lease again before it writes (a run that lost its
//! mailbox meanwhile is fenced out, not retried). One imprecision remains: a
//! batch whose commit was acknowledged into a dropped connection is replayed
//! as unchanged rows, so the run's counts then say "unchanged" for what the
//! ledger (rightly) records as inserted. Rows and events are exact.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::warn;

use super::{Engine, EngineError};

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(5);

impl EngineError {
    /// A database connection failure that may go away by itself.
    pub(crate) fn is_db_connection(&self) -> bool {
        matches!(self, EngineError::Repo(e) if e.is_connection())
    }
}

/// The retry schedule of one piece of work through an outage.
pub(crate) struct Outage {
    budget: Duration,
    delay: Duration,
    since: Option<Instant>,
}

impl Outage {
    pub(crate) fn new(budget: Duration) -> Self {
        Outage {
            budget,
            delay: FIRST_DELAY,
            since: None,
        }
    }

    /// After a failure: waits and returns true when the work should be tried
    /// again, false when the failure is not a connection error or the outage
    /// has outlasted its budget.
    pub(crate) async fn wait_to_retry(&mut self, what: &str, err: &EngineError) -> bool {
        if !err.is_db_connection() {
            return false;
        }
        let first = *self.since.get_or_insert_with(Instant::now);
        if first.elapsed() + self.delay > self.budget {
            return false;
        }
        warn!(
            what,
            error = %err,
            retry_in_ms = self.delay.as_millis() as u64,
            "database unreachable; retrying"
        );
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        true
    }
}

impl Engine {
    /// Runs `op`, retrying it through a database outage of up to `db_outage`.
    pub(crate) async fn riding_out<T, F, Fut>(
        &self,
        what: &str,
        mut op: F,
    ) -> Result<T, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, EngineError>>,
    {
        let mut outage = Outage::new(self.options.db_outage);
        loop {
            match op().await {
                Err(e) if outage.wait_to_retry(what, &e).await => {}
                other => return other,
            }
        }
    }
}
