//! Quota windows, per-user concurrency accounting and call statistics.
//!
//! Per-second limits (user and project) are fixed one-second windows; per-minute
//! limits are sliding 60-second windows, as Google's are. The project's daily
//! units are counted per Pacific calendar day (see `pacific.rs`). A refused
//! request is charged nothing anywhere.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::config::Quota;
use crate::pacific;
use crate::quota_table::QuotaTable;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

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
    /// The quota table requests are charged by.
    pub table: QuotaTable,
    /// Units charged to the project (every mailbox) since Pacific midnight.
    pub project_units_today: u64,
    /// Units served beyond `Quota::project_daily` (not enforced: Google bills
    /// them rather than refusing), summed over days since start or reset.
    pub project_units_past_daily: u64,
    /// Quota refusals by reason: "rateLimitExceeded" and "userRateLimitExceeded"
    /// (per-user limits, 429 or 403), "projectRateLimitExceeded" (project
    /// limits, answered as 429 rateLimitExceeded) and "dailyLimitExceeded".
    /// Concurrency refusals are not quota refusals: see `faults_injected`.
    pub refusals: BTreeMap<String, u64>,
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
    /// Quota refusals for one reason (0 when none).
    pub fn refused(&self, reason: &str) -> u64 {
        self.refusals.get(reason).copied().unwrap_or(0)
    }
}

/// A fixed window: `used` units since `start`, forgotten when it ends.
#[derive(Debug, Default)]
struct Window {
    start: Option<Instant>,
    used: u64,
}

impl Window {
    /// Start a new window when the current one (of `len`) has ended.
    fn roll(&mut self, now: Instant, len: Duration) -> Instant {
        match self.start {
            Some(s) if now.duration_since(s) < len => s,
            _ => {
                self.start = Some(now);
                self.used = 0;
                now
            }
        }
    }

    /// How long until `units` more fit under `limit`; None when they fit now.
    fn wait(&mut self, now: Instant, len: Duration, limit: u64, units: u64) -> Option<Duration> {
        let start = self.roll(now, len);
        (self.used + units > limit).then(|| len.saturating_sub(now.duration_since(start)))
    }

    fn record(&mut self, units: u64) {
        self.used += units;
    }
}

/// A sliding 60-second window: a log of admitted units, oldest first.
#[derive(Debug, Default)]
struct SlidingWindow {
    log: VecDeque<(Instant, u64)>,
    used: u64,
}

impl SlidingWindow {
    /// Forget entries a minute old or more.
    fn evict(&mut self, now: Instant) {
        while let Some(&(at, units)) = self.log.front() {
            if now.saturating_duration_since(at) < MINUTE {
                break;
            }
            self.log.pop_front();
            self.used -= units;
        }
    }

    /// How long until `units` more fit under `limit`; None when they fit now.
    fn wait(&mut self, now: Instant, limit: u64, units: u64) -> Option<Duration> {
        self.evict(now);
        let excess = (self.used + units).saturating_sub(limit);
        if excess == 0 {
            return None;
        }
        // Entries leave oldest first: wait for the one whose leaving frees enough.
        let mut freed = 0;
        for &(at, u) in &self.log {
            freed += u;
            if freed >= excess {
                return Some((at + MINUTE).saturating_duration_since(now));
            }
        }
        // Dearer than the whole limit: it never fits; say "a minute".
        Some(MINUTE)
    }

    fn record(&mut self, now: Instant, units: u64) {
        // Callers read the clock before taking the lock, so two requests can
        // arrive slightly out of order; keep the log sorted for `evict`.
        let at = self.log.back().map_or(now, |&(last, _)| last.max(now));
        self.log.push_back((at, units));
        self.used += units;
    }
}

#[derive(Debug, Default)]
struct UserState {
    second: Window,
    minute: SlidingWindow,
    in_flight: usize,
}

/// The project's windows, shared by every mailbox.
#[derive(Debug, Default)]
struct ProjectState {
    second: Window,
    minute: SlidingWindow,
    /// The Pacific date `Stats::project_units_today` counts.
    day: Option<NaiveDate>,
}

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<String, UserState>,
    project: ProjectState,
    in_flight: usize,
    stats: Stats,
}

/// Shared limiter + statistics (one mutex: every request touches both anyway).
#[derive(Debug, Default)]
pub(crate) struct Limits {
    inner: Mutex<Inner>,
}

/// The moment a request is charged: a monotonic instant for the rate windows
/// and the wall clock for the Pacific day.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    pub mono: Instant,
    pub wall: DateTime<Utc>,
}

impl Moment {
    pub fn now() -> Self {
        Self {
            mono: Instant::now(),
            wall: Utc::now(),
        }
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `per_second` or `per_minute` of one user.
    User,
    /// `project_per_second` or `project_per_minute`.
    Project,
    /// `project_daily` with `enforce_daily`.
    Daily,
}

impl Limit {
    /// The `reason` Gmail puts in the error body.
    pub fn reason(self, use_403: bool) -> &'static str {
        match self {
            Limit::User if use_403 => "userRateLimitExceeded",
            Limit::User | Limit::Project => "rateLimitExceeded",
            Limit::Daily => "dailyLimitExceeded",
        }
    }

    /// The key in `Stats::refusals`: the reason, except that project refusals
    /// (which Gmail also calls rateLimitExceeded) are told apart.
    fn stats_key(self, use_403: bool) -> &'static str {
        match self {
            Limit::Project => "projectRateLimitExceeded",
            other => other.reason(use_403),
        }
    }
}

/// A quota refusal: which limit, and how long until the request would fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub limit: Limit,
    pub wait: Duration,
}

/// Outcome of admitting a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Ok,
    Refused(Refusal),
}

fn refusal(limit: Limit) -> impl FnOnce(Duration) -> Refusal {
    move |wait| Refusal { limit, wait }
}

/// The first limit `units` more would break, without charging anything. The
/// day comes first: when it is spent, no shorter wait helps.
fn first_refusal(
    user: &mut UserState,
    project: &mut ProjectState,
    today: u64,
    quota: &Quota,
    units: u64,
    now: Moment,
) -> Option<Refusal> {
    if quota.enforce_daily
        && let Some(limit) = quota.project_daily
        && today + units > limit
    {
        return Some(refusal(Limit::Daily)(pacific::until_midnight(now.wall)));
    }
    let t = now.mono;
    let user_second = quota
        .per_second
        .and_then(|l| user.second.wait(t, SECOND, l.into(), units));
    let project_second = quota
        .project_per_second
        .and_then(|l| project.second.wait(t, SECOND, l.into(), units));
    let user_minute = quota
        .per_minute
        .and_then(|l| user.minute.wait(t, l.into(), units));
    let project_minute = quota
        .project_per_minute
        .and_then(|l| project.minute.wait(t, l.into(), units));
    user_second
        .map(refusal(Limit::User))
        .or_else(|| project_second.map(refusal(Limit::Project)))
        .or_else(|| user_minute.map(refusal(Limit::User)))
        .or_else(|| project_minute.map(refusal(Limit::Project)))
}

/// Spend `units` in every window that is configured.
fn record(
    user: &mut UserState,
    project: &mut ProjectState,
    quota: &Quota,
    units: u64,
    now: Instant,
) {
    if quota.per_second.is_some() {
        user.second.record(units);
    }
    if quota.project_per_second.is_some() {
        project.second.record(units);
    }
    if quota.per_minute.is_some() {
        user.minute.record(now, units);
    }
    if quota.project_per_minute.is_some() {
        project.minute.record(now, units);
    }
}

/// Units of a charge that land beyond the daily threshold.
fn past_threshold(today: u64, units: u64, threshold: u64) -> u64 {
    (today + units).saturating_sub(threshold) - today.saturating_sub(threshold)
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

    /// Count the call and charge quota in the units of `quota.table`.
    pub fn charge(&self, mailbox: &str, method: &str, quota: &Quota) -> Admission {
        self.charge_at(mailbox, method, quota, Moment::now())
    }

    /// `charge` at a given moment (tests drive the clock through this).
    pub fn charge_at(&self, mailbox: &str, method: &str, quota: &Quota, now: Moment) -> Admission {
        let units = u64::from(quota.table.cost(method));
        let mut g = self.lock();
        let inner = &mut *g;
        let day = pacific::date(now.wall);
        if inner.project.day != Some(day) {
            inner.project.day = Some(day);
            inner.stats.project_units_today = 0;
        }
        let stats = &mut inner.stats;
        let entry = stats
            .mailboxes
            .entry(mailbox.to_string())
            .or_default()
            .entry(method.to_string())
            .or_default();
        entry.calls += 1;
        let user = inner.users.entry(mailbox.to_string()).or_default();
        let project = &mut inner.project;
        let today = stats.project_units_today;
        if let Some(refused) = first_refusal(user, project, today, quota, units, now) {
            entry.throttled += 1;
            let key = refused.limit.stats_key(quota.use_403);
            *stats.refusals.entry(key.to_string()).or_default() += 1;
            if refused.limit == Limit::Project {
                *stats
                    .faults_injected
                    .entry("projectQuota".to_string())
                    .or_default() += 1;
            }
            return Admission::Refused(refused);
        }
        record(user, project, quota, units, now.mono);
        entry.quota_units += units;
        if let Some(threshold) = quota.project_daily {
            stats.project_units_past_daily += past_threshold(today, units, threshold);
        }
        stats.project_units_today = today + units;
        Admission::Ok
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

    /// A snapshot of the counters; `table` is the caller's (the quota is not
    /// kept here).
    pub fn stats(&self, table: QuotaTable) -> Stats {
        let g = self.lock();
        let mut stats = g.stats.clone();
        stats.table = table;
        // No charge since Pacific midnight: nothing is spent today yet.
        if g.project.day != Some(pacific::date(Utc::now())) {
            stats.project_units_today = 0;
        }
        stats
    }

    /// Zero the counters and forget every quota window.
    pub fn reset(&self) {
        let mut g = self.lock();
        let in_flight = g.in_flight;
        g.stats = Stats::default();
        g.stats.peak_concurrent = in_flight;
        g.project = ProjectState::default();
        for u in g.users.values_mut() {
            u.second = Window::default();
            u.minute = SlidingWindow::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &str = "users.messages.get";

    fn at(now: Moment, secs: f64) -> Moment {
        Moment {
            mono: now.mono + Duration::from_secs_f64(secs),
            wall: now.wall + chrono::Duration::milliseconds((secs * 1000.0) as i64),
        }
    }

    fn refused(a: Admission) -> Refusal {
        match a {
            Admission::Refused(r) => r,
            Admission::Ok => panic!("expected a refusal"),
        }
    }

    fn wall(rfc3339: &str) -> Moment {
        Moment {
            mono: Instant::now(),
            wall: DateTime::parse_from_rfc3339(rfc3339)
                .expect("valid time")
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn quota_per_second_refuses_then_reports_wait() {
        let l = Limits::default();
        let q = Quota {
            per_second: Some(10),
            table: QuotaTable::Y2025,
            ..Quota::default()
        };
        assert_eq!(l.charge("a", GET, &q), Admission::Ok);
        assert_eq!(l.charge("a", GET, &q), Admission::Ok);
        let r = refused(l.charge("a", GET, &q));
        assert_eq!(r.limit, Limit::User);
        assert!(r.wait <= Duration::from_secs(1));
        // Another user has its own budget.
        assert_eq!(l.charge("b", GET, &q), Admission::Ok);
        let s = l.stats(q.table);
        assert_eq!(s.calls("a", GET), 3);
        assert_eq!(s.quota_units("a"), 10);
        assert_eq!(s.refused("rateLimitExceeded"), 1);
    }

    #[test]
    fn sliding_minute_waits_for_the_oldest_entry() {
        let l = Limits::default();
        let q = Quota {
            per_minute: Some(100),
            ..Quota::default()
        };
        let t0 = Moment::now();
        // Five 20-unit gets, ten seconds apart, fill the 100 units.
        for i in 0..5 {
            assert_eq!(
                l.charge_at("a", GET, &q, at(t0, 10.0 * f64::from(i))),
                Admission::Ok
            );
        }
        let r = refused(l.charge_at("a", GET, &q, at(t0, 50.0)));
        assert_eq!(
            r,
            Refusal {
                limit: Limit::User,
                wait: Duration::from_secs(10)
            }
        );
        // A fixed window would have restarted by now; a sliding one has not.
        let r = refused(l.charge_at("a", GET, &q, at(t0, 59.5)));
        assert_eq!(r.wait, Duration::from_millis(500));
        // At 60 s the first get leaves the window: one more fits, then the
        // next must wait for the second (at 10 s) to leave.
        assert_eq!(l.charge_at("a", GET, &q, at(t0, 60.0)), Admission::Ok);
        let r = refused(l.charge_at("a", GET, &q, at(t0, 61.0)));
        assert_eq!(r.wait, Duration::from_secs(9));
        let s = l.stats(q.table);
        assert_eq!(s.quota_units("a"), 6 * 20);
        assert_eq!(s.mailboxes["a"][GET].throttled, 3);
    }

    #[test]
    fn sliding_wait_covers_several_entries() {
        let l = Limits::default();
        let q = Quota {
            per_minute: Some(45),
            ..Quota::default()
        };
        let t0 = Moment::now();
        assert_eq!(l.charge_at("a", GET, &q, t0), Admission::Ok);
        assert_eq!(l.charge_at("a", GET, &q, at(t0, 5.0)), Admission::Ok);
        // 40 used: a 40-unit threads.get fits only once both gets have left.
        let r = refused(l.charge_at("a", "users.threads.get", &q, at(t0, 6.0)));
        assert_eq!(r.wait, Duration::from_secs(59));
        // Dearer than the whole limit: never fits, reported as a minute.
        let q = Quota {
            per_minute: Some(10),
            ..q
        };
        l.reset();
        let r = refused(l.charge_at("a", "users.threads.get", &q, t0));
        assert_eq!(r.wait, MINUTE);
    }

    #[test]
    fn project_minute_is_shared_by_mailboxes() {
        let l = Limits::default();
        let q = Quota {
            project_per_minute: Some(100),
            per_minute: Some(1_000),
            ..Quota::default()
        };
        let t0 = Moment::now();
        for (i, mb) in ["a", "b", "a", "b", "a"].into_iter().enumerate() {
            assert_eq!(l.charge_at(mb, GET, &q, at(t0, i as f64)), Admission::Ok);
        }
        let r = refused(l.charge_at("b", GET, &q, at(t0, 5.0)));
        assert_eq!(
            r,
            Refusal {
                limit: Limit::Project,
                wait: Duration::from_secs(55)
            }
        );
        // The refused request charged nothing: b's own window holds its two gets.
        assert_eq!(l.lock().users["b"].minute.used, 40);
        let s = l.stats(q.table);
        assert_eq!(s.refused("projectRateLimitExceeded"), 1);
        assert_eq!(s.faults_injected.get("projectQuota"), Some(&1));
        assert_eq!(s.project_units_today, 100);
    }

    #[test]
    fn refusal_by_one_window_charges_none() {
        let l = Limits::default();
        let q = Quota {
            per_second: Some(1_000),
            project_per_second: Some(1_000),
            per_minute: Some(30),
            ..Quota::default()
        };
        let t0 = Moment::now();
        assert_eq!(l.charge_at("a", GET, &q, t0), Admission::Ok);
        assert_eq!(refused(l.charge_at("a", GET, &q, t0)).limit, Limit::User);
        let g = l.lock();
        assert_eq!(g.users["a"].second.used, 20);
        assert_eq!(g.project.second.used, 20);
        assert_eq!(g.stats.project_units_today, 20);
    }

    #[test]
    fn use_403_counts_user_rate_limit_exceeded() {
        let l = Limits::default();
        let q = Quota {
            per_minute: Some(1),
            use_403: true,
            ..Quota::default()
        };
        assert_eq!(l.charge("a", "users.getProfile", &q), Admission::Ok);
        let r = refused(l.charge("a", "users.getProfile", &q));
        assert_eq!(r.limit.reason(q.use_403), "userRateLimitExceeded");
        assert_eq!(l.stats(q.table).refused("userRateLimitExceeded"), 1);
    }

    #[test]
    fn enforced_daily_limit_refuses_until_pacific_midnight() {
        let l = Limits::default();
        let q = Quota {
            project_daily: Some(40),
            enforce_daily: true,
            ..Quota::default()
        };
        // Noon in Los Angeles (PST).
        let noon = wall("2026-01-15T20:00:00Z");
        assert_eq!(l.charge_at("a", GET, &q, noon), Admission::Ok);
        assert_eq!(l.charge_at("b", GET, &q, noon), Admission::Ok);
        let r = refused(l.charge_at("a", GET, &q, noon));
        assert_eq!(
            r,
            Refusal {
                limit: Limit::Daily,
                wait: Duration::from_secs(12 * 3600)
            }
        );
        // Even a one-unit call is refused: all 40 units are spent.
        assert_eq!(
            refused(l.charge_at("a", "users.getProfile", &q, noon)).limit,
            Limit::Daily
        );
        // After midnight Pacific the day starts over.
        let tomorrow = wall("2026-01-16T08:00:01Z");
        assert_eq!(l.charge_at("a", GET, &q, tomorrow), Admission::Ok);
        let g = l.lock();
        assert_eq!(g.stats.project_units_today, 20);
        assert_eq!(g.stats.refusals.get("dailyLimitExceeded"), Some(&2));
        assert_eq!(g.stats.project_units_past_daily, 0);
    }

    #[test]
    fn unenforced_daily_threshold_serves_and_counts_the_excess() {
        let l = Limits::default();
        let q = Quota {
            project_daily: Some(50),
            ..Quota::default()
        };
        let noon = wall("2026-07-01T19:00:00Z");
        for _ in 0..3 {
            assert_eq!(l.charge_at("a", GET, &q, noon), Admission::Ok);
        }
        let g = l.lock();
        assert_eq!(g.stats.project_units_today, 60);
        assert_eq!(g.stats.project_units_past_daily, 10);
        assert!(g.stats.refusals.is_empty());
    }

    #[test]
    fn reset_forgets_windows_and_counters() {
        let l = Limits::default();
        let q = Quota {
            per_minute: Some(20),
            project_per_minute: Some(20),
            project_daily: Some(10),
            ..Quota::default()
        };
        assert_eq!(l.charge("a", GET, &q), Admission::Ok);
        assert!(matches!(l.charge("a", GET, &q), Admission::Refused(_)));
        l.reset();
        let s = l.stats(q.table);
        assert_eq!(s.calls("a", GET), 0);
        assert_eq!(s.project_units_today, 0);
        assert_eq!(s.project_units_past_daily, 0);
        assert!(s.refusals.is_empty());
        assert_eq!(l.charge("a", GET, &q), Admission::Ok);
    }

    #[test]
    fn stats_name_the_table() {
        let l = Limits::default();
        assert_eq!(l.stats(QuotaTable::Y2025).table, QuotaTable::Y2025);
        let v = serde_json::to_value(l.stats(QuotaTable::Y2026)).expect("json");
        assert_eq!(v["table"], "2026");
        assert_eq!(v["projectUnitsToday"], 0);
        assert_eq!(v["projectUnitsPastDaily"], 0);
        assert!(v["refusals"].is_object());
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
        assert_eq!(l.stats(q.table).peak_concurrent, 1);
    }
}
