//! Client configuration: endpoint, auth, quota table and pacing, concurrency, retry budget and
//! timeouts. Defaults follow Gmail's 2026 quota table (every Cloud project created since May
//! 2026); `QuotaTable::Y2025` gives the older projects' figures.

use std::time::Duration;

use crate::auth::AuthSpec;
use crate::quota_table::QuotaTable;

/// Production Gmail API root.
pub const DEFAULT_ENDPOINT: &str = "https://gmail.googleapis.com/";

/// How a [`crate::GmailClient`] talks to Gmail.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API root (GMAIL_ENDPOINT). `http://` is accepted only for loopback hosts.
    pub endpoint: String,
    pub auth: AuthSpec,
    pub quota: QuotaConfig,
    pub retry: RetryPolicy,
    /// Whole-request timeout for one HTTP attempt (a timeout is retried).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// Production endpoint, default limits, the given auth.
    pub fn new(auth: AuthSpec) -> Self {
        ClientConfig {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            auth,
            quota: QuotaConfig::default(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Same, pointed at another endpoint (the emulator).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::new(AuthSpec::None)
    }
}

/// Per-mailbox limits.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaConfig {
    /// Which of Gmail's quota tables the project is on: what each call costs and the
    /// per-user limit paced to.
    pub table: QuotaTable,
    /// Units a minute per mailbox, paced as a sliding minute (default: the table's per-user
    /// limit). Lower it when another app spends the same users' quota.
    pub units_per_minute: Option<f64>,
    /// Pace smoothly at this many units a second instead of to the minute: for a per-second
    /// limit, or to leave the rest of each second to others. Overrides `units_per_minute`.
    pub units_per_second: Option<f64>,
    /// Smooth pacing only: fraction of the rate left unused (0.03 → pace at 97%). Scheduling
    /// and network jitter move request arrivals; pacing at exactly the limit puts every
    /// quota-window edge one jitter away from a 429. At 250 units/s, 3% leaves ~30 ms of slack
    /// per window of 50 messages.get; on a loaded 2-core machine 2% saw occasional 429s and
    /// 0% saw several per run (benches/quota_floor.rs).
    pub headroom: f64,
    /// Smooth pacing only: bucket capacity in units (≤ one second of quota). Small by
    /// default: a full second of burst on top of steady pacing is twice the quota in that
    /// second.
    pub burst_units: f64,
    /// Minute pacing only: how much longer than a minute the window is. A request reaches
    /// Gmail a little after it is admitted, and not always equally late; a window exactly a
    /// minute long would put each minute's first admission one jitter away from a 429.
    pub window_margin: Duration,
    /// Concurrent requests in flight per mailbox.
    pub max_concurrent: usize,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig::for_table(QuotaTable::default())
    }
}

impl QuotaConfig {
    /// Paced to `table`'s per-user minute.
    pub fn for_table(table: QuotaTable) -> Self {
        QuotaConfig {
            table,
            units_per_minute: None,
            units_per_second: None,
            headroom: 0.03,
            burst_units: 5.0,
            window_margin: Duration::from_millis(500),
            max_concurrent: 10,
        }
    }

    /// Paced smoothly at `units_per_second` (default table).
    pub fn per_second(units_per_second: f64) -> Self {
        QuotaConfig {
            units_per_second: Some(units_per_second),
            ..QuotaConfig::default()
        }
    }

    /// The per-minute limit paced to when pacing to the minute.
    pub fn minute_limit(&self) -> f64 {
        self.units_per_minute
            .unwrap_or_else(|| f64::from(self.table.user_units_per_minute()))
    }

    /// The least time spending `units` from a quiet start takes at this pace, quota waits
    /// only (round trips not counted): at a per-minute limit L the first L go at once and each
    /// later L a window after the previous; smooth pacing spends the burst, then the rate.
    pub fn pace_seconds(&self, units: f64) -> f64 {
        match self.units_per_second {
            Some(rate) => ((units - self.burst_units).max(0.0)) / (rate * (1.0 - self.headroom)),
            None => {
                let limit = self.minute_limit();
                let span = 60.0 + self.window_margin.as_secs_f64();
                ((units / limit).ceil() - 1.0).max(0.0) * span
            }
        }
    }

    /// The average rate this config allows, units a second.
    pub fn sustained_units_per_second(&self) -> f64 {
        match self.units_per_second {
            Some(u) => u * (1.0 - self.headroom),
            None => self.minute_limit() / (60.0 + self.window_margin.as_secs_f64()),
        }
    }
}

/// Retry budget and backoff shape (exponential, full jitter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per call, the first included.
    pub max_attempts: u32,
    /// Give up once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
    /// Backoff ceiling before jitter for the first retry; doubles each retry.
    pub base_delay: Duration,
    /// Upper bound on one backoff sleep (Retry-After may ask for longer, up to `max_elapsed`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(600),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(32),
        }
    }
}
