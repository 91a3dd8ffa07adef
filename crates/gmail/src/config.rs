//! Client configuration: endpoint, auth, quota limiter, concurrency, retry budget and timeouts.
//! Defaults match Gmail's documented per-user limits for older Cloud projects.

use std::time::Duration;

use crate::auth::AuthSpec;

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
    /// Gmail quota units per second per mailbox (250 for older Cloud projects, 100 for
    /// projects created after May 2026).
    pub units_per_second: f64,
    /// Fraction of the quota left unused (0.03 → pace at 97%). Scheduling and network jitter
    /// move request arrivals; pacing at exactly the limit puts every quota-window edge one
    /// jitter away from a 429 (the refused call then waits out its Retry-After, and the
    /// mailbox slows down 10%). At 250 units/s, 3% leaves ~30 ms of slack per window of 50
    /// messages.get; on a loaded 2-core machine 2% saw occasional 429s and 0% saw several
    /// per run (benches/quota_floor.rs).
    pub headroom: f64,
    /// Bucket capacity in units (≤ one second of quota). Small by default: a full second
    /// of burst on top of steady pacing is twice the quota in that second.
    pub burst_units: f64,
    /// Concurrent requests in flight per mailbox.
    pub max_concurrent: usize,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            units_per_second: 250.0,
            headroom: 0.03,
            burst_units: 5.0,
            max_concurrent: 10,
        }
    }
}

impl QuotaConfig {
    /// Default limits for a quota of `units_per_second`.
    pub fn per_second(units_per_second: f64) -> Self {
        QuotaConfig {
            units_per_second,
            ..QuotaConfig::default()
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
