//! Per-mailbox admission: a pacer in Gmail quota units and a semaphore capping requests in
//! flight. Gmail's limits are per minute, so the default pacer is a sliding window of a minute
//! (`MinuteWindow`): it spends what the window allows at once (a first burst up to the
//! minute's allowance) and after that exactly what leaves the window, which is the best
//! schedule a sliding-window quota allows, and a short sync never waits. `--quota-units-per-sec`
//! keeps the smooth token bucket (`TokenBucket`) for a per-second limit or a share of a
//! mailbox. Both reserve: a call debits its cost at once and sleeps until it may go, so waiting
//! calls are served in order.
//!
//! A rate-limit answer means Gmail's limit is below ours (a 2025/2026 table mismatch, another
//! app spending the same user's quota, Google's own variation). The window then learns the
//! limit from what it admitted within a minute before the refused call (one answer is
//! enough), holds it for 15 minutes and then creeps back towards the configured limit by 1%
//! a minute; the bucket slows by
//! 10% (at most once a second, never below a quarter) and recovers by 2% a second. The call
//! that was refused waits out its own Retry-After; the others keep flowing.

use std::collections::VecDeque;
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
}

/// A sliding window of `span` in which at most `limit` units are admitted: Gmail's per-minute
/// quota, mirrored. `span` is a minute plus a margin for arrival jitter (a request reaches
/// Gmail a little after it is admitted here, and not always equally late).
#[derive(Debug)]
pub(crate) struct MinuteWindow {
    configured: f64,
    span: Duration,
    state: Mutex<WindowState>,
}

/// One admission: when the call may go, its units, and its place in the order of admissions.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    units: f64,
    ticket: Ticket,
}

/// Which admission a call was: what a rate-limit answer to it is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Ticket(u64);

#[derive(Debug)]
struct WindowState {
    /// Admissions in time order.
    log: VecDeque<Entry>,
    /// Units in `log`.
    total: f64,
    next_ticket: u64,
    /// The limit paced at: the configured one, or what a rate-limit answer taught.
    learned: Option<Learned>,
}

#[derive(Debug, Clone, Copy)]
struct Learned {
    limit: f64,
    at: Instant,
}

/// A learned limit holds this long without creeping back: each probe above Gmail's limit
/// costs a refusal for every call in flight, so probing is rare.
const WINDOW_HOLD: Duration = Duration::from_secs(15 * 60);
/// After the hold, a learned limit creeps back towards the configured one by this share of
/// the configured limit per minute (another app that shared the quota may have stopped).
const WINDOW_RECOVERY_PER_MIN: f64 = 0.01;
/// Never learn a limit below this share of the configured one; and a refusal that came
/// when the window held less than it (a concurrency or project-wide limit, a blip) is not
/// our pace overrunning the user's minute, and teaches nothing.
const WINDOW_FLOOR: f64 = 0.1;
/// What is learned is this share of what the window held before the refused call.
const WINDOW_LEARN: f64 = 0.95;

impl MinuteWindow {
    /// At most `limit` units (> 0) in any `span`.
    pub(crate) fn new(limit: f64, span: Duration) -> Self {
        MinuteWindow {
            configured: limit,
            span,
            state: Mutex::new(WindowState {
                log: VecDeque::new(),
                total: 0.0,
                next_ticket: 0,
                learned: None,
            }),
        }
    }

    fn limit_at(&self, s: &WindowState, now: Instant) -> f64 {
        match s.learned {
            None => self.configured,
            Some(l) => {
                let since = now.saturating_duration_since(l.at);
                let minutes = since.saturating_sub(WINDOW_HOLD).as_secs_f64() / 60.0;
                (l.limit + minutes * WINDOW_RECOVERY_PER_MIN * self.configured).min(self.configured)
            }
        }
    }

    /// Debit `cost` units and return how long the caller must wait before sending: the
    /// earliest moment (not before any earlier admission) at which the window holds room.
    pub(crate) fn reserve(&self, cost: f64, now: Instant) -> (Duration, Ticket) {
        let Ok(mut guard) = self.state.lock() else {
            return (Duration::ZERO, Ticket::default());
        };
        let s = &mut *guard;
        // Admissions that left the window for good.
        while let Some(e) = s.log.front() {
            if e.at + self.span > now {
                break;
            }
            s.total -= e.units;
            s.log.pop_front();
        }
        let limit = self.limit_at(s, now);
        let mut at = s.log.back().map_or(now, |e| e.at.max(now));
        let mut inside = s.total;
        let mut oldest = 0;
        // Entries scheduled so far ahead that `at` is past their window.
        while let Some(e) = s.log.get(oldest) {
            if e.at + self.span > at {
                break;
            }
            inside -= e.units;
            oldest += 1;
        }
        // Wait for the oldest admissions to leave until this call fits. A single call
        // larger than the limit goes alone, once the window is empty.
        while inside + cost > limit {
            let Some(e) = s.log.get(oldest) else {
                break;
            };
            at = at.max(e.at + self.span);
            inside -= e.units;
            oldest += 1;
        }
        let ticket = Ticket(s.next_ticket);
        s.next_ticket += 1;
        s.log.push_back(Entry {
            at,
            units: cost,
            ticket,
        });
        s.total += cost;
        (at.saturating_duration_since(now), ticket)
    }

    /// Gmail refused the call admitted as `ticket`: its limit is at most what the window
    /// admitted before that call within a span of it. Learn that, less a margin, unless a
    /// limit was learned in the last second (the other calls in flight then are refused
    /// too, and teach nothing new). Returns the new limit when it changed.
    pub(crate) fn rate_limited(&self, ticket: Ticket, now: Instant) -> Option<f64> {
        let mut s = self.state.lock().ok()?;
        if s.learned
            .is_some_and(|l| now.saturating_duration_since(l.at) < CUT_INTERVAL)
        {
            return None;
        }
        let sent_at = s
            .log
            .iter()
            .find(|e| e.ticket == ticket)
            .map_or(now, |e| e.at);
        let before: f64 = s
            .log
            .iter()
            .filter(|e| e.ticket < ticket && e.at + self.span > sent_at)
            .map(|e| e.units)
            .sum();
        if before < self.configured * WINDOW_FLOOR {
            return None;
        }
        let current = self.limit_at(&s, now);
        let learned = (before * WINDOW_LEARN)
            .max(self.configured * WINDOW_FLOOR)
            .min(current);
        if learned >= current {
            return None;
        }
        s.learned = Some(Learned {
            limit: learned,
            at: now,
        });
        Some(learned)
    }

    /// The limit paced at now when a rate-limit answer lowered it, units per window.
    pub(crate) fn learned_limit(&self, now: Instant) -> Option<f64> {
        let s = self.state.lock().ok()?;
        s.learned.map(|_| self.limit_at(&s, now))
    }

    /// The limit currently paced at, units per window.
    #[cfg(test)]
    pub(crate) fn current_limit(&self, now: Instant) -> f64 {
        match self.state.lock() {
            Ok(s) => self.limit_at(&s, now),
            Err(_) => self.configured,
        }
    }
}

/// How a mailbox's calls are paced.
#[derive(Debug)]
pub(crate) enum Pacer {
    /// Gmail's per-minute limit, as a sliding window (the default).
    Window(MinuteWindow),
    /// A smooth rate (`--quota-units-per-sec`).
    Smooth(TokenBucket),
}

/// What a rate-limit answer taught the pacer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Slowed {
    /// The window now admits this many units a minute.
    PerMinute(f64),
    /// The bucket now refills at this many units a second.
    PerSecond(f64),
}

impl Pacer {
    /// Reserve `cost` and sleep out the wait; returns the time waited and which admission
    /// the call is.
    pub(crate) async fn acquire(&self, cost: f64) -> (Duration, Ticket) {
        let now = Instant::now();
        let (wait, ticket) = match self {
            Pacer::Window(w) => w.reserve(cost, now),
            Pacer::Smooth(b) => (b.reserve(cost, now), Ticket::default()),
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        (wait, ticket)
    }

    /// Units a minute paced at, when a rate-limit answer lowered the window's limit.
    pub(crate) fn learned_per_minute(&self) -> Option<f64> {
        match self {
            // The window is a minute plus a margin for jitter: its limit is Gmail's minute.
            Pacer::Window(w) => w.learned_limit(Instant::now()),
            Pacer::Smooth(_) => None,
        }
    }

    /// The call admitted as `ticket` was refused with a rate limit.
    pub(crate) fn rate_limited(&self, ticket: Ticket, now: Instant) -> Option<Slowed> {
        match self {
            Pacer::Window(w) => w.rate_limited(ticket, now).map(Slowed::PerMinute),
            Pacer::Smooth(b) => b.slow_down(now).map(Slowed::PerSecond),
        }
    }
}

/// Quota pacer + in-flight cap for one mailbox.
#[derive(Debug)]
pub(crate) struct MailboxLimiter {
    pub(crate) pacer: Pacer,
    in_flight: Semaphore,
}

impl MailboxLimiter {
    pub(crate) fn new(pacer: Pacer, max_concurrent: usize) -> Self {
        MailboxLimiter {
            pacer,
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
        let l = MailboxLimiter::new(Pacer::Smooth(TokenBucket::new(1000.0, 1000.0)), 2);
        let a = l.slot().await;
        let b = l.slot().await;
        assert!(a.is_some() && b.is_some());
        let third = tokio::time::timeout(Duration::from_millis(20), l.slot()).await;
        assert!(third.is_err(), "a third slot must wait");
        drop(a);
        assert!(l.slot().await.is_some());
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_window_spends_the_minute_at_once_then_what_leaves_it() {
        let w = MinuteWindow::new(6_000.0, MINUTE);
        let t0 = Instant::now();
        // 300 gets of 20 units fit the first minute: none waits.
        for k in 0..300 {
            assert_eq!(w.reserve(20.0, t0).0, Duration::ZERO, "call {k}");
        }
        // The 301st goes when the first leaves the window, the 302nd with it (both were
        // admitted at t0), and so on: the second minute repeats the first.
        assert_eq!(w.reserve(20.0, t0).0, MINUTE);
        assert_eq!(w.reserve(20.0, t0).0, MINUTE);
        // Later in the first minute, a call still waits for the window, not for a refill.
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(w.reserve(20.0, t1).0, Duration::from_secs(30));
    }

    #[test]
    fn a_window_never_holds_more_than_its_limit() {
        let w = MinuteWindow::new(1_000.0, MINUTE);
        let t0 = Instant::now();
        let mut admitted = Vec::new();
        // Calls of mixed cost arriving every 100 ms for five minutes.
        for k in 0..3_000u32 {
            let now = t0 + Duration::from_millis(100 * u64::from(k));
            let cost = [20.0, 5.0, 2.0, 40.0][k as usize % 4];
            admitted.push((now + w.reserve(cost, now).0, cost));
        }
        for (i, &(start, _)) in admitted.iter().enumerate() {
            let inside: f64 = admitted[i..]
                .iter()
                .take_while(|(t, _)| *t < start + MINUTE)
                .map(|(_, c)| c)
                .sum();
            assert!(
                inside <= 1_000.0 + 1e-9,
                "{inside} units in a minute from call {i}"
            );
        }
        // And the schedule is as dense as that allows: a call waits only while the last
        // minute holds more than the limit less its cost (at most 40), so every minute of the
        // schedule but the last spends more than 960 units.
        let last = admitted.last().map(|(t, _)| *t - t0).unwrap_or_default();
        let units: f64 = admitted.iter().map(|(_, c)| c).sum();
        let (best, worst) = ((units / 1_000.0 - 1.0) * 60.0, (units / 960.0) * 60.0);
        assert!(
            last.as_secs_f64() >= best && last.as_secs_f64() <= worst,
            "last call at {last:?}, expected between {best} and {worst} s"
        );
    }

    #[test]
    fn a_call_larger_than_the_window_goes_alone() {
        let w = MinuteWindow::new(30.0, MINUTE);
        let t0 = Instant::now();
        assert_eq!(w.reserve(20.0, t0).0, Duration::ZERO);
        assert_eq!(w.reserve(40.0, t0).0, MINUTE);
        assert_eq!(w.reserve(1.0, t0).0, 2 * MINUTE);
    }

    #[test]
    fn a_refusal_teaches_the_window_gmails_limit() {
        // We think 15,000 a minute (the 2025 table); Gmail enforces 6,000.
        let w = MinuteWindow::new(15_000.0, MINUTE);
        let t0 = Instant::now();
        for _ in 0..300 {
            w.reserve(20.0, t0);
        }
        // The 301st call, and the 302nd sent with it, are refused.
        let (_, first_refused) = w.reserve(20.0, t0);
        let (_, second_refused) = w.reserve(20.0, t0);
        let learned = w.rate_limited(first_refused, t0).expect("learned");
        assert!((learned - 6_000.0 * 0.95).abs() < 1e-6, "{learned}");
        // The other refusal, within a second, teaches nothing new.
        let soon = t0 + Duration::from_millis(500);
        assert_eq!(w.rate_limited(second_refused, soon), None);
        // Pacing now follows the learned limit: the next call waits for the window.
        assert_eq!(w.reserve(20.0, t0).0, MINUTE);
        // The limit holds for 15 minutes, then creeps back by 1% of the configured one a
        // minute, never past it.
        assert!((w.current_limit(t0 + 15 * MINUTE) - 5_700.0).abs() < 1e-6);
        assert!((w.current_limit(t0 + 25 * MINUTE) - (5_700.0 + 1_500.0)).abs() < 1e-6);
        assert_eq!(w.current_limit(t0 + 1_000 * MINUTE), 15_000.0);
    }

    #[test]
    fn a_refusal_of_a_nearly_empty_window_teaches_nothing() {
        // Refused with 20 units in the minute: not our pace (a concurrency limit, a
        // project-wide one, a blip). Learning from it would cut the mailbox to a tenth.
        let w = MinuteWindow::new(6_000.0, MINUTE);
        let t0 = Instant::now();
        w.reserve(20.0, t0);
        let (_, ticket) = w.reserve(20.0, t0);
        assert_eq!(w.rate_limited(ticket, t0), None);
        assert_eq!(w.current_limit(t0), 6_000.0);
        // With a tenth of the limit spent first, the floor is what it learns at least.
        let w = MinuteWindow::new(6_000.0, MINUTE);
        for _ in 0..31 {
            w.reserve(20.0, t0);
        }
        let (_, ticket) = w.reserve(20.0, t0);
        assert_eq!(w.rate_limited(ticket, t0), Some(600.0));
    }
}
