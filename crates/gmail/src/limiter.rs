//! Per-mailbox admission: a token bucket in Gmail quota units (continuous refill, small
//! burst) and a semaphore capping requests in flight. The bucket reserves: a call debits its
//! cost at once and sleeps until the debt is repaid, so waiting calls are served in order and
//! admissions never exceed `burst + rate × t` in any interval of length t.
//!
//! A rate-limit answer means the server's idea of the quota is below ours (a shared quota, a
//! misconfigured limit, arrival jitter at a window edge): the bucket then slows down by 10%
//! (at most once a second, never below a quarter of the configured rate) and creeps back by
//! 2% of the configured rate per second. The call that was refused waits out its own
//! Retry-After; the others keep flowing, so one late arrival does not stall the mailbox for
//! a whole Retry-After second.

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
    /// Current rate as a fraction of the configured one (AIMD after rate-limit answers).
    factor: f64,
    last_cut: Option<Instant>,
}

const CUT: f64 = 0.9;
const FLOOR: f64 = 0.25;
const RECOVERY_PER_SEC: f64 = 0.02;
const CUT_INTERVAL: Duration = Duration::from_secs(1);

impl TokenBucket {
    /// `rate` units/s (> 0), holding at most `burst` units (≥ 0). Starts full.
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                last: Instant::now(),
                factor: 1.0,
                last_cut: None,
            }),
        }
    }

    fn refill(&self, s: &mut BucketState, now: Instant) {
        let dt = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + dt * self.rate * s.factor).min(self.burst);
        s.factor = (s.factor + dt * RECOVERY_PER_SEC).min(1.0);
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
            Duration::from_secs_f64(-s.tokens / (self.rate * s.factor))
        }
    }

    /// The server answered with a rate-limit error: pace 10% slower (at most once a second).
    /// Returns the new rate when it was cut.
    pub(crate) fn slow_down(&self, now: Instant) -> Option<f64> {
        let mut s = self.state.lock().ok()?;
        self.refill(&mut s, now);
        if s.last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < CUT_INTERVAL)
        {
            return None;
        }
        s.factor = (s.factor * CUT).max(FLOOR);
        s.last_cut = Some(now);
        Some(self.rate * s.factor)
    }

    /// The rate currently paced at, units/s.
    #[cfg(test)]
    pub(crate) fn current_rate(&self, now: Instant) -> f64 {
        match self.state.lock() {
            Ok(mut s) => {
                self.refill(&mut s, now);
                self.rate * s.factor
            }
            Err(_) => self.rate,
        }
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
    fn rate_limit_answers_slow_the_bucket_then_it_recovers() {
        let b = TokenBucket::new(100.0, 5.0);
        let t0 = Instant::now();
        assert_eq!(b.slow_down(t0), Some(90.0));
        assert!((b.current_rate(t0) - 90.0).abs() < 1e-9);
        // A second 429 within the same second does not cut again.
        assert_eq!(b.slow_down(t0 + Duration::from_millis(500)), None);
        assert!((b.current_rate(t0 + Duration::from_millis(500)) - 91.0).abs() < 1e-6);
        // Waits now follow the slower rate: 9 units of debt at 90/s = 0.1 s.
        let t1 = t0 + Duration::from_millis(500);
        let _ = b.reserve(5.0, t1); // uses the banked tokens
        let w = b.reserve(9.0, t1);
        assert!(
            w > Duration::from_millis(95) && w < Duration::from_millis(100),
            "{w:?}"
        );
        // Repeated cuts stop at a quarter of the configured rate.
        let mut t = t1;
        for _ in 0..40 {
            t += Duration::from_secs(1);
            b.slow_down(t);
        }
        assert!(b.current_rate(t) >= 25.0 && b.current_rate(t) < 30.0);
        // Five quiet seconds later: 2% of the configured rate back per second.
        let later = t + Duration::from_secs(5);
        let (now_rate, later_rate) = (b.current_rate(t), b.current_rate(later));
        assert!(
            (later_rate - (now_rate + 10.0)).abs() < 0.5,
            "{now_rate} → {later_rate}"
        );
        // And never above the configured rate.
        assert!((b.current_rate(later + Duration::from_secs(100)) - 100.0).abs() < 1e-9);
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
