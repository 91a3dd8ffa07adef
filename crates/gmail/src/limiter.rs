//! Per-mailbox admission: a token bucket in Gmail quota units (continuous refill, small
//! burst) and a semaphore capping requests in flight. The bucket reserves: a call debits its
//! cost at once and sleeps until the debt is repaid, so waiting calls are served in order and
//! admissions never exceed `burst + rate × t` in any interval of length t.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Token bucket in quota units.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` units/s (> 0), holding at most `burst` units (≥ 0). Starts full.
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    fn refill(&self, s: &mut BucketState, now: Instant) {
        let dt = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + dt * self.rate).min(self.burst);
        s.last = now;
    }

    /// Debit `cost` units now and return how long the caller must wait before sending.
    pub(crate) fn reserve(&self, cost: f64, now: Instant) -> Duration {
        let Ok(mut s) = self.state.lock() else {
            return Duration::ZERO;
        };
        self.refill(&mut s, now);
        s.tokens -= cost;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / self.rate)
        }
    }

    /// The server asked everyone to wait until `until` (Retry-After on a quota error): push the
    /// bucket into debt so no call is admitted before then and none burst right after.
    pub(crate) fn hold_until(&self, until: Instant, now: Instant) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        self.refill(&mut s, now);
        let debt = until.saturating_duration_since(now).as_secs_f64() * self.rate;
        s.tokens = s.tokens.min(-debt);
    }

    /// Reserve `cost` and sleep out the wait; returns the time waited.
    pub(crate) async fn acquire(&self, cost: f64) -> Duration {
        let wait = self.reserve(cost, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }
}

/// Quota bucket + in-flight cap for one mailbox.
#[derive(Debug)]
pub(crate) struct MailboxLimiter {
    pub(crate) bucket: TokenBucket,
    in_flight: Semaphore,
}

impl MailboxLimiter {
    pub(crate) fn new(rate: f64, burst: f64, max_concurrent: usize) -> Self {
        MailboxLimiter {
            bucket: TokenBucket::new(rate, burst),
            in_flight: Semaphore::new(max_concurrent.max(1)),
        }
    }

    /// Take an in-flight slot. The slot is taken *before* quota is reserved, so a request is
    /// sent right when its quota is granted, never later in a burst.
    pub(crate) async fn slot(&self) -> Option<SemaphorePermit<'_>> {
        self.in_flight.acquire().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admissions_never_exceed_burst_plus_rate() {
        let b = TokenBucket::new(250.0, 5.0);
        let t0 = Instant::now();
        // 100 calls of 5 units requested at once: call k may go at 5k / 250 s.
        let waits: Vec<Duration> = (0..100).map(|_| b.reserve(5.0, t0)).collect();
        assert_eq!(waits[0], Duration::ZERO);
        for (k, w) in waits.iter().enumerate() {
            let expect = (5.0 * k as f64) / 250.0;
            assert!(
                (w.as_secs_f64() - expect).abs() < 1e-6,
                "call {k}: {w:?} vs {expect}"
            );
        }
        // In any 1 s window starting at an admission: ≤ 5 + 250 units, i.e. 51 calls, and
        // the 51st lands exactly at +1 s.
        assert!((waits[50].as_secs_f64() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn refill_is_continuous_and_capped() {
        let b = TokenBucket::new(100.0, 10.0);
        let t0 = Instant::now();
        assert_eq!(b.reserve(10.0, t0), Duration::ZERO);
        // 50 ms later 5 units are back: a 5-unit call goes at once, the next waits 50 ms.
        let t1 = t0 + Duration::from_millis(50);
        assert_eq!(b.reserve(5.0, t1), Duration::ZERO);
        let w = b.reserve(5.0, t1);
        assert!((w.as_secs_f64() - 0.05).abs() < 1e-6, "{w:?}");
        // A long idle does not bank more than the burst.
        let t2 = t1 + Duration::from_secs(100);
        assert_eq!(b.reserve(10.0, t2), Duration::ZERO);
        assert!(b.reserve(1.0, t2) > Duration::ZERO);
    }

    #[test]
    fn hold_until_blocks_everyone() {
        let b = TokenBucket::new(100.0, 100.0);
        let t0 = Instant::now();
        b.hold_until(t0 + Duration::from_secs(2), t0);
        let w = b.reserve(1.0, t0);
        assert!(w >= Duration::from_secs(2), "{w:?}");
    }

    #[tokio::test]
    async fn slots_cap_in_flight() {
        let l = MailboxLimiter::new(1000.0, 1000.0, 2);
        let a = l.slot().await;
        let b = l.slot().await;
        assert!(a.is_some() && b.is_some());
        let third = tokio::time::timeout(Duration::from_millis(20), l.slot()).await;
        assert!(third.is_err(), "a third slot must wait");
        drop(a);
        assert!(l.slot().await.is_some());
    }
}
