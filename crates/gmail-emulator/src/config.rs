//! Emulator configuration: mailbox content, fault injection and quota limits.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::quota_table::QuotaTable;

/// How the emulator is populated and how it misbehaves.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Seed of the synthetic generator and of the fault RNG.
    pub seed: u64,
    /// Synthetic messages generated per mailbox (0 = empty mailbox).
    pub messages: usize,
    /// internalDate of synthetic mail is spread over this many days ending now.
    pub days: u32,
    /// Served mailboxes; the first is the default (`me` without a token map).
    pub mailboxes: Vec<String>,
    /// A directory of `.eml` files or an mbox file imported into the default mailbox.
    pub import: Option<PathBuf>,
    /// Fault injection (all off by default).
    pub faults: Faults,
    /// Quota and concurrency limits (all off by default).
    pub quota: Quota,
    /// Bearer token → mailbox. Empty: any token (or none) means the default mailbox.
    pub tokens: HashMap<String, String>,
    /// Address to bind; default 127.0.0.1:0.
    pub addr: std::net::SocketAddr,
    /// Give a few messages (about 1 in 97, at most 8) a 1.5–2.6 MB attachment.
    pub large_attachments: bool,
    /// Percent of synthetic messages that carry an attachment, inline image or
    /// forwarded message. `None`: the generator's own mix (about 38%, every
    /// shape well represented for tests); `Some(15)` matches the benchmark's
    /// "about 15% with attachments" mailbox.
    pub attachment_percent: Option<u8>,
}

/// Bearer tokens are credentials: Debug shows only which mailboxes they map to.
impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mapped: Vec<&String> = self.tokens.values().collect();
        f.debug_struct("EmulatorConfig")
            .field("seed", &self.seed)
            .field("messages", &self.messages)
            .field("days", &self.days)
            .field("mailboxes", &self.mailboxes)
            .field("import", &self.import)
            .field("faults", &self.faults)
            .field("quota", &self.quota)
            .field(
                "tokens",
                &format_args!("<{} redacted → {mapped:?}>", self.tokens.len()),
            )
            .field("addr", &self.addr)
            .field("large_attachments", &self.large_attachments)
            .field("attachment_percent", &self.attachment_percent)
            .finish()
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            messages: 50,
            days: 7,
            mailboxes: vec!["user@example.com".to_string()],
            import: None,
            faults: Faults::default(),
            quota: Quota::default(),
            tokens: HashMap::new(),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            large_attachments: true,
            attachment_percent: None,
        }
    }
}

/// Injected misbehaviour. Rates are probabilities in [0, 1] per request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Faults {
    /// 500 backendError rate.
    pub error_rate: f64,
    /// 503 (service unavailable) rate.
    pub unavailable_rate: f64,
    /// Fixed latency added to every Gmail request.
    pub latency_ms: u64,
    /// Extra uniformly random latency in [0, latency_jitter_ms].
    pub latency_jitter_ms: u64,
    /// Rate of responses whose connection is dropped after part of the body.
    pub drop_rate: f64,
    /// Rate at which messages.get finds the message gone (it is deleted, 404).
    pub vanish_rate: f64,
    /// Rate at which a history.list page comes back with no records but a nextPageToken.
    pub empty_history_page_rate: f64,
    /// Poison ids: messages.get of one of these message ids answers with this
    /// HTTP status every time (400 invalidArgument, 500 backendError, 503…),
    /// whatever the format, while every other request is served normally.
    pub failing_messages: BTreeMap<String, u16>,
}

impl Faults {
    /// True when any fault is active.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

/// Quota limits, modelled on Gmail's quota units. Every limit counts in the units
/// of `table`; a limit left at `None` is not enforced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Quota {
    /// Quota units per user per second (a fixed one-second window).
    pub per_second: Option<u32>,
    /// Quota units per user per minute (a sliding 60-second window).
    pub per_minute: Option<u32>,
    /// Concurrent requests per user.
    pub max_concurrent: Option<u32>,
    /// Answer quota exhaustion with 403 userRateLimitExceeded instead of 429 rateLimitExceeded.
    pub use_403: bool,
    /// Quota units per second for the whole project: every mailbox together
    /// (Google's per-project limit; a fixed one-second window). Refusals are
    /// counted as the fault `projectQuota`.
    pub project_per_second: Option<u32>,
    /// The price list requests are charged by (JSON: "2025" or "2026").
    pub table: QuotaTable,
    /// Quota units per minute for the whole project (a sliding 60-second
    /// window). Refusals are counted as the fault `projectQuota`.
    pub project_per_minute: Option<u32>,
    /// Quota units per Pacific calendar day for the whole project. Past it the
    /// emulator keeps serving and counts the excess (Google's 2026 figure is a
    /// billing threshold), unless `enforce_daily` is set.
    pub project_daily: Option<u64>,
    /// Refuse requests past `project_daily` with 403 dailyLimitExceeded.
    pub enforce_daily: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_tokens() {
        let cfg = EmulatorConfig {
            tokens: HashMap::from([("s3cr3t-token".to_string(), "a@example.com".to_string())]),
            ..EmulatorConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t-token"), "{shown}");
        assert!(shown.contains("a@example.com"));
    }
}
