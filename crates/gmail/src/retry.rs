//! Retry policy pieces: which failures are retryable, exponential backoff with full jitter,
//! and the server's wait hints (the Retry-After header, Gmail's "Retry after <RFC3339>").

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;

use crate::config::RetryPolicy;

/// The longest server wait hint we honour: 15 minutes. A `Retry-After` of 99999999999
/// seconds or an HTTP-date centuries ahead is a broken proxy or server, not a plan; sleeping
/// on it would stall the mailbox forever (and adding jitter to it overflowed `Duration`).
/// Longer hints are cut to this, logged and counted (`GmailClient::retry_after_clamped`);
/// the retry budget (`RetryPolicy::max_elapsed`) then decides whether to wait or give up.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// What one attempt ended with, before it is turned into a result or a retry.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A non-2xx answer.
    Status {
        status: u16,
        /// `error.errors[0].reason` (e.g. rateLimitExceeded).
        reason: Option<String>,
        /// `error.message`, or the body text when it is not Gmail's JSON.
        message: String,
        /// From Retry-After, or "Retry after <time>" in the message.
        retry_after: Option<Duration>,
    },
    /// Connection refused/reset, TLS failure, truncated body.
    Transport(String),
    /// The per-request timeout fired.
    Timeout,
    /// The token source failed.
    Token(String),
    /// A 2xx body we cannot decode.
    Decode(String),
}

impl Failure {
    /// Gmail's "Too many concurrent requests for user": a rate-limit answer about requests
    /// in flight, not about units spent, so it teaches the pacer nothing.
    pub(crate) fn is_concurrency_limit(&self) -> bool {
        matches!(self, Failure::Status { message, .. } if message.to_ascii_lowercase().contains("concurrent"))
    }

    /// Rate-limit answers: 429, or 403 with a rate-limit reason.
    pub(crate) fn is_rate_limit(&self) -> bool {
        match self {
            Failure::Status { status: 429, .. } => true,
            Failure::Status {
                status: 403,
                reason: Some(r),
                ..
            } => matches!(r.as_str(), "rateLimitExceeded" | "userRateLimitExceeded"),
            _ => false,
        }
    }

    /// Worth another attempt after a backoff.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                self.is_rate_limit() || matches!(status, 500 | 502 | 503 | 504)
            }
            Failure::Transport(_) | Failure::Timeout => true,
            Failure::Token(_) | Failure::Decode(_) => false,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Short text for logs and `RetriesExhausted::last` (no secrets: status, reason, message).
    pub(crate) fn describe(&self) -> String {
        match self {
            Failure::Status {
                status,
                reason,
                message,
                ..
            } => match reason {
                Some(r) => format!("HTTP {status} {r}: {message}"),
                None => format!("HTTP {status}: {message}"),
            },
            Failure::Transport(m) => format!("transport: {m}"),
            Failure::Timeout => "request timed out".to_string(),
            Failure::Token(m) => format!("token: {m}"),
            Failure::Decode(m) => format!("decode: {m}"),
        }
    }
}

/// Full-jitter backoff for retry number `retry` (1 = first retry): uniform in
/// `[0, min(max_delay, base_delay × 2^(retry-1))]`.
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let cap = backoff_ceiling(policy, retry);
    if cap.is_zero() {
        return cap;
    }
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// The upper bound `backoff` draws from.
pub(crate) fn backoff_ceiling(policy: &RetryPolicy, retry: u32) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    policy
        .base_delay
        .saturating_mul(1u32 << exp)
        .min(policy.max_delay)
}

/// The wait before retrying: the server's hint is a floor (no request before it), the
/// jittered backoff otherwise.
pub fn delay_for(policy: &RetryPolicy, retry: u32, hint: Option<Duration>) -> Duration {
    let jitter = backoff(policy, retry);
    match hint {
        // A little jitter on top spreads the calls that were all told the same instant.
        Some(h) => h + jitter.min(h / 4 + Duration::from_millis(50)),
        None => jitter,
    }
}

/// Parse a Retry-After header value: delta-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs >= 0.0
        && !secs.is_nan()
    {
        // Too large for a Duration (1e30, inf): "very long"; the caller clamps it.
        return Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Cut a server hint to [`MAX_RETRY_AFTER`]; `true` when it was longer.
pub fn clamp_hint(hint: Option<Duration>) -> (Option<Duration>, bool) {
    match hint {
        Some(h) if h > MAX_RETRY_AFTER => (Some(MAX_RETRY_AFTER), true),
        other => (other, false),
    }
}

/// Gmail's `"User-rate limit exceeded.  Retry after 2026-11-22T12:00:00.000Z"`.
pub(crate) fn parse_retry_after_message(message: &str, now: DateTime<Utc>) -> Option<Duration> {
    let idx = message.find("Retry after ")?;
    let rest = &message[idx + "Retry after ".len()..];
    let token = rest
        .split_whitespace()
        .next()?
        .trim_end_matches(['.', ',', ';', ')']);
    let at = DateTime::parse_from_rfc3339(token)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(60),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }

    #[test]
    fn backoff_stays_within_exponential_bounds() {
        let p = policy();
        assert_eq!(backoff_ceiling(&p, 1), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(&p, 2), Duration::from_millis(200));
        assert_eq!(backoff_ceiling(&p, 4), Duration::from_millis(800));
        assert_eq!(backoff_ceiling(&p, 6), Duration::from_secs(2));
        assert_eq!(backoff_ceiling(&p, 500), Duration::from_secs(2));
        for retry in 1..12 {
            let cap = backoff_ceiling(&p, retry);
            let mut seen_low = false;
            for _ in 0..200 {
                let d = backoff(&p, retry);
                assert!(d <= cap, "retry {retry}: {d:?} > {cap:?}");
                seen_low |= d < cap / 2;
            }
            // Full jitter: draws spread over the whole range, not just near the cap.
            assert!(seen_low, "retry {retry}: no draw below half the cap");
        }
    }

    #[test]
    fn server_hint_is_a_floor() {
        let p = policy();
        for retry in 1..8 {
            let d = delay_for(&p, retry, Some(Duration::from_secs(3)));
            assert!(d >= Duration::from_secs(3), "{d:?}");
            assert!(d <= Duration::from_secs(7), "{d:?}");
        }
    }

    #[test]
    fn retry_after_header_forms() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn huge_retry_after_is_clamped_not_a_panic() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let p = policy();
        for v in [
            "99999999999",
            "18446744073709551615",
            "99999999999999999999999",
            "1e30",
            "inf",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let raw = parse_retry_after(v, now);
            assert!(raw.is_some_and(|d| d > MAX_RETRY_AFTER), "{v}: {raw:?}");
            let (h, clamped) = clamp_hint(raw);
            assert!(clamped, "{v}");
            assert_eq!(h, Some(MAX_RETRY_AFTER));
            let d = delay_for(&p, 3, h);
            assert!(
                d >= MAX_RETRY_AFTER && d <= MAX_RETRY_AFTER * 2,
                "{v}: {d:?}"
            );
        }
        assert_eq!(
            clamp_hint(Some(Duration::from_secs(30))),
            (Some(Duration::from_secs(30)), false)
        );
        assert_eq!(clamp_hint(None), (None, false));
        assert_eq!(parse_retry_after("NaN", now), None);
    }

    #[test]
    fn retry_after_in_gmail_message() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after_message(
                "User-rate limit exceeded.  Retry after 2026-11-22T12:00:05.500Z",
                now
            ),
            Some(Duration::from_millis(5500))
        );
        assert_eq!(
            parse_retry_after_message("Retry after 2026-11-22T12:01:00Z.", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after_message("Rate limit exceeded", now), None);
        assert_eq!(parse_retry_after_message("Retry after tomorrow", now), None);
    }

    #[test]
    fn classification() {
        let st = |status: u16, reason: Option<&str>| Failure::Status {
            status,
            reason: reason.map(str::to_string),
            message: String::new(),
            retry_after: None,
        };
        assert!(st(429, None).is_retryable());
        assert!(st(403, Some("userRateLimitExceeded")).is_retryable());
        assert!(st(403, Some("rateLimitExceeded")).is_rate_limit());
        assert!(!st(403, Some("forbidden")).is_retryable());
        for s in [500, 502, 503, 504] {
            assert!(st(s, None).is_retryable(), "{s}");
        }
        for s in [400, 401, 404, 409, 501] {
            assert!(!st(s, None).is_retryable(), "{s}");
        }
        assert!(Failure::Timeout.is_retryable());
        assert!(Failure::Transport("reset".into()).is_retryable());
        assert!(!Failure::Decode("x".into()).is_retryable());
    }
}
