//! A quota shared beyond this process: Google limits a Cloud project as a
//! whole, and a fleet of workers on several hosts spends from that one
//! budget. The budget itself lives elsewhere (mailingest keeps it in its
//! database); this client only asks it before each request, through
//! [`SharedQuota`], after the mailbox's own limiter.
//!
//! Asking per request would cost a round trip per Gmail call, so credit is
//! taken in chunks and spent locally; the chunk is debited at once (what is
//! unspent when the process ends is lost, never overspent). The lock is held
//! while a reservation's wait is slept out, so the process's requests queue
//! in arrival order behind it: mailboxes share by how often they ask, and a
//! mailbox asks at most at its own per-user pace.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

/// The shared budget, in Gmail quota units.
#[async_trait]
pub trait SharedQuota: Send + Sync + 'static {
    /// Debits `units` now and returns how long to wait before spending them
    /// (zero when the budget had them), or that the project's day is spent.
    async fn reserve(&self, units: f64) -> Result<Duration, SharedQuotaError>;
}

/// Why a [`SharedQuota`] did not grant units.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SharedQuotaError {
    /// Spending them would carry the project past its daily units: no request may go
    /// until the quota day rolls over.
    #[error(
        "the project's {limit} quota units for today are spent (the day resets at midnight Pacific time, in {}h{:02}m)",
        resets_in.as_secs() / 3600,
        resets_in.as_secs() % 3600 / 60
    )]
    DayExhausted { limit: u64, resets_in: Duration },
    /// The budget could not be asked: the request goes ahead on the per-mailbox pace alone.
    #[error("{0}")]
    Unreachable(String),
}

/// Local credit drawn from a [`SharedQuota`] in chunks.
pub(crate) struct SharedPacer {
    shared: Arc<dyn SharedQuota>,
    chunk: f64,
    credit: tokio::sync::Mutex<f64>,
}

impl std::fmt::Debug for SharedPacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPacer")
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl SharedPacer {
    pub(crate) fn new(shared: Arc<dyn SharedQuota>, chunk: f64) -> Self {
        SharedPacer {
            shared,
            chunk: chunk.max(1.0),
            credit: tokio::sync::Mutex::new(0.0),
        }
    }

    /// Waits until `units` may be spent; returns the time waited, or that the project's
    /// day is spent (nothing may be sent).
    pub(crate) async fn acquire(&self, units: f64) -> Result<Duration, SharedQuotaError> {
        let mut credit = self.credit.lock().await;
        if *credit >= units {
            *credit -= units;
            return Ok(Duration::ZERO);
        }
        let want = self.chunk.max(units - *credit);
        match self.shared.reserve(want).await {
            Ok(wait) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                *credit += want - units;
                Ok(wait)
            }
            Err(e @ SharedQuotaError::DayExhausted { .. }) => Err(e),
            Err(e) => {
                warn!(error = %e, "shared quota not reachable; pacing per mailbox only");
                Ok(Duration::ZERO)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records reservations; answers a fixed wait.
    struct Budget(Mutex<Vec<f64>>, Duration);

    #[async_trait]
    impl SharedQuota for Budget {
        async fn reserve(&self, units: f64) -> Result<Duration, SharedQuotaError> {
            self.0.lock().expect("lock").push(units);
            Ok(self.1)
        }
    }

    #[tokio::test]
    async fn credit_is_taken_in_chunks_and_spent_locally() {
        let budget = Arc::new(Budget(Mutex::new(Vec::new()), Duration::from_millis(40)));
        let pacer = SharedPacer::new(budget.clone(), 20.0);
        // 4 × 5 units: one chunk of 20, waited once.
        let mut waited = Duration::ZERO;
        for _ in 0..4 {
            waited += pacer.acquire(5.0).await.expect("granted");
        }
        assert_eq!(*budget.0.lock().expect("lock"), vec![20.0]);
        assert_eq!(waited, Duration::from_millis(40));
        // A request larger than the chunk takes what it needs.
        pacer.acquire(30.0).await.expect("granted");
        assert_eq!(*budget.0.lock().expect("lock"), vec![20.0, 30.0]);
    }
}
