//! Quota windows, per-user concurrency accounting and call statistics.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Quota;

/// Gmail's per-method quota cost in units.
pub(crate) fn cost(method: &str) -> u32 {
    match method {
        "users.messages.get" | "users.messages.list" | "users.messages.attachments.get" => 5,
        "users.threads.list" | "users.threads.get" => 10,
        "users.history.list" => 2,
        _ => 1,
    }
}

/// Calls and quota units of one method.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MethodStats {
    /// Requests received (including throttled and failed ones).
    pub calls: u64,
    /// Quota units charged (requests that passed the quota check).
    pub quota_units: u64,
    /// Requests answered with a rate-limit error.
    pub throttled: u64,
}

/// A snapshot of what the emulator has served since start or the last reset.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Mailbox → method (e.g. "users.messages.get") → counters.
    pub mailboxes: BTreeMap<String, BTreeMap<String, MethodStats>>,
    /// Highest number of Gmail requests in flight at once (all mailboxes).
    pub peak_concurrent: usize,
    /// Highest number in flight at once, per mailbox.
    pub peak_concurrent_per_mailbox: BTreeMap<String, usize>,
    /// Fault kind → times injected.
    pub faults_injected: BTreeMap<String, u64>,
    /// Batch requests received.
    pub batches: u64,
    /// `quotaUser` value → requests that carried it (Gmail attributes
    /// per-user quota by it when a server acts for many users).
    pub quota_users: BTreeMap<String, u64>,
}

impl Stats {
    /// Calls of one method for one mailbox (0 when never called).
    pub fn calls(&self, mailbox: &str, method: &str) -> u64 {
        self.mailboxes
            .get(mailbox)
            .and_then(|m| m.get(method))
            .map_or(0, |s| s.calls)
    }
    /// Total quota units charged to a mailbox.
    pub fn quota_units(&self, mailbox: &str) -> u64 {
        self.mailboxes
            .get(mailbox)
            .map_or(0, |m| m.values().map(|s| s.quota_units).sum())
    }
}

#[derive(Debug, Default)]
struct Window {
    start: Option<Instant>,
    used: u64,
}

impl Window {
    /// Try to spend `units` in a fixed window of `len`; Err(wait) when exhausted.
    fn take(
        &mut self,
        now: Instant,
        len: Duration,
        limit: u64,
        units: u64,
    ) -> Result<(), Duration> {
        let start = match self.start {
            Some(s) if now.duration_since(s) < len => s,
            _ => {
                self.start = Some(now);
                self.used = 0;
                now
            }
        };
        if self.used + units > limit {
            return Err(len.saturating_sub(now.duration_since(start)));
        }
        self.used += units;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct UserState {
    second: Window,
    minute: Window,
    in_flight: usize,
}

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<String, UserState>,
    /// The project's window, shared by every mailbox.
    project: Window,
    in_flight: usize,
    stats: Stats,
}

/// Shared limiter + statistics (one mutex: every request touches both anyway).
#[derive(Debug, Default)]
pub(crate) struct Limits {
    inner: Mutex<Inner>,
}

/// Outcome of admitting a request.
pub(crate) enum Admission {
    Ok,
    /// Quota exhausted; retry after this long.
    Quota(Duration),
}

impl Limits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enter a request (for concurrency accounting); must be paired with `leave`.
    pub fn enter(&self, mailbox: &str, quota: &Quota) -> bool {
        let mut g = self.lock();
        let inner = &mut *g;
        let user = inner.users.entry(mailbox.to_string()).or_default();
        if let Some(max) = quota.max_concurrent
            && user.in_flight >= max as usize
        {
            return false;
        }
        user.in_flight += 1;
        let now = user.in_flight;
        inner.in_flight += 1;
        inner.stats.peak_concurrent = inner.stats.peak_concurrent.max(inner.in_flight);
        let peak = inner
            .stats
            .peak_concurrent_per_mailbox
            .entry(mailbox.to_string())
            .or_default();
        *peak = (*peak).max(now);
        true
    }

    pub fn leave(&self, mailbox: &str) {
        let mut g = self.lock();
        if let Some(u) = g.users.get_mut(mailbox) {
            u.in_flight = u.in_flight.saturating_sub(1);
        }
        g.in_flight = g.in_flight.saturating_sub(1);
    }

    /// Count the call and charge quota.
    pub fn charge(&self, mailbox: &str, method: &str, quota: &Quota) -> Admission {
        let units = u64::from(cost(method));
        let now = Instant::now();
        let mut g = self.lock();
        let inner = &mut *g;
        let entry = inner
            .stats
            .mailboxes
            .entry(mailbox.to_string())
            .or_default()
            .entry(method.to_string())
            .or_default();
        entry.calls += 1;
        let user = inner.users.entry(mailbox.to_string()).or_default();
        let mut verdict = Ok(());
        if let Some(limit) = quota.per_second {
            verdict = user
                .second
                .take(now, Duration::from_secs(1), u64::from(limit), units);
        }
        if verdict.is_ok()
            && let Some(limit) = quota.project_per_second
        {
            verdict = inner
                .project
                .take(now, Duration::from_secs(1), u64::from(limit), units);
            if verdict.is_err() {
                *inner
                    .stats
                    .faults_injected
                    .entry("projectQuota".to_string())
                    .or_default() += 1;
                if quota.per_second.is_some() {
                    user.second.used = user.second.used.saturating_sub(units);
                }
            }
        }
        if verdict.is_ok()
            && let Some(limit) = quota.per_minute
        {
            verdict = user
                .minute
                .take(now, Duration::from_secs(60), u64::from(limit), units);
            if verdict.is_err() && quota.per_second.is_some() {
                // Give back the per-second units of a request that is refused anyway.
                user.second.used = user.second.used.saturating_sub(units);
            }
        }
        match verdict {
            Ok(()) => {
                entry.quota_units += units;
                Admission::Ok
            }
            Err(wait) => {
                entry.throttled += 1;
                Admission::Quota(wait)
            }
        }
    }

    /// Count a call refused before quota (concurrency) as throttled.
    pub fn count_throttled(&self, mailbox: &str, method: &str) {
        let mut g = self.lock();
        let e = g
            .stats
            .mailboxes
            .entry(mailbox.to_string())
            .or_default()
            .entry(method.to_string())
            .or_default();
        e.calls += 1;
        e.throttled += 1;
    }

    pub fn fault(&self, kind: &str) {
        *self
            .lock()
            .stats
            .faults_injected
            .entry(kind.to_string())
            .or_default() += 1;
    }

    pub fn quota_user(&self, value: &str) {
        *self
            .lock()
            .stats
            .quota_users
            .entry(value.to_string())
            .or_default() += 1;
    }

    pub fn batch(&self) {
        self.lock().stats.batches += 1;
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub fn reset(&self) {
        let mut g = self.lock();
        let in_flight = g.in_flight;
        g.stats = Stats::default();
        g.stats.peak_concurrent = in_flight;
        for u in g.users.values_mut() {
            u.second = Window::default();
            u.minute = Window::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_per_second_refuses_then_reports_wait() {
        let l = Limits::default();
        let q = Quota {
            per_second: Some(10),
            ..Quota::default()
        };
        assert!(matches!(
            l.charge("a", "users.messages.get", &q),
            Admission::Ok
        ));
        assert!(matches!(
            l.charge("a", "users.messages.get", &q),
            Admission::Ok
        ));
        match l.charge("a", "users.messages.get", &q) {
            Admission::Quota(wait) => assert!(wait <= Duration::from_secs(1)),
            _ => panic!("third get must exceed 10 units/s"),
        }
        // Another user has its own budget.
        assert!(matches!(
            l.charge("b", "users.messages.get", &q),
            Admission::Ok
        ));
        let s = l.stats();
        assert_eq!(s.calls("a", "users.messages.get"), 3);
        assert_eq!(s.quota_units("a"), 10);
    }

    #[test]
    fn concurrency_limit() {
        let l = Limits::default();
        let q = Quota {
            max_concurrent: Some(1),
            ..Quota::default()
        };
        assert!(l.enter("a", &q));
        assert!(!l.enter("a", &q));
        l.leave("a");
        assert!(l.enter("a", &q));
        assert_eq!(l.stats().peak_concurrent, 1);
    }
}
