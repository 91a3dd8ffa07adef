//! Riding out a store outage: an S3 endpoint that stops answering (a restart, a network cut,
//! a load balancer failover) or answers 5xx for a while comes back by itself, so a call that
//! fails that way is retried with backoff for a bounded time
//! ([`crate::StoreOptions::outage_budget`], 60 s by default). Only then does it fail, with
//! [`StoreError::OutageOutlasted`] naming the store and the last failure.
//!
//! Retrying is safe because every call retried here is idempotent: a put is put-if-absent
//! of content-addressed bytes (a replay finds the object or writes the same one), and reads
//! change nothing. A stream put is not retried (its input is consumed by the first try).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::StoreError;

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Runs `op` until it succeeds, fails with a non-transient error, or the failures have
/// lasted longer than `budget`.
pub(crate) async fn ride_out<T, F, Fut>(
    url: &str,
    what: &'static str,
    budget: Duration,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut delay = FIRST_DELAY;
    let mut since: Option<Instant> = None;
    loop {
        let err = match op().await {
            Ok(v) => {
                if let Some(first) = since {
                    tracing::warn!(store = %url, what, outage_ms = first.elapsed().as_millis() as u64, "store reachable again");
                }
                return Ok(v);
            }
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => e,
        };
        let first = *since.get_or_insert_with(Instant::now);
        // Jitter so that the tasks of a run (and the runs of a fleet) do not retry in step.
        let wait = delay + Duration::from_millis(rand::random::<u64>() % 250);
        if first.elapsed() + wait > budget {
            return Err(StoreError::OutageOutlasted {
                url: url.to_owned(),
                waited_secs: first.elapsed().as_secs(),
                last: err.to_string(),
            });
        }
        tracing::warn!(store = %url, what, error = %err, retry_in_ms = wait.as_millis() as u64, "store unavailable; retrying");
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}
