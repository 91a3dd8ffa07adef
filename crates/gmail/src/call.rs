//! One Gmail call, end to end: take an in-flight slot, pay quota, send with a timeout, read
//! the outcome (status, Retry-After, body) and decide — return, retry after a backoff,
//! refresh the token once on 401, or fail with a typed error. Metrics are counted here.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use google_gmail1::common::{Delegate, Response, Retry};
use google_gmail1::{Gmail, api::Scope};
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::GmailError;
use crate::auth::{TokenSource, TransientTokenError};
use crate::config::RetryPolicy;
use crate::limiter::MailboxLimiter;
use crate::limiter::Slowed;
use crate::metrics::{Method, MetricsTable};
use crate::quota_table::QuotaTable;
use crate::retry::{
    Failure, MAX_RETRY_AFTER, clamp_hint, delay_for, parse_retry_after, parse_retry_after_message,
};
use crate::shared_quota::{SharedPacer, SharedQuotaError};
use crate::transport::Connector;

/// Attempts and time allowed before an endpoint that never answered is given up on.
const FIRST_CONTACT_ATTEMPTS: u32 = 3;
const FIRST_CONTACT_BUDGET: Duration = Duration::from_secs(3);

/// The scope added to every call (google-gmail1 would default messages.get to an add-on scope).
pub(crate) const SCOPE: Scope = Scope::Readonly;

/// Everything needed to call Gmail for one mailbox.
pub(crate) struct Mailbox {
    pub(crate) user_id: String,
    /// Sent as `quotaUser` on every call, so Google attributes per-user quota
    /// to this mailbox even when one server acts for many.
    pub(crate) quota_user: String,
    pub(crate) hub: Gmail<Connector>,
    pub(crate) auth: TokenSource,
    pub(crate) limiter: MailboxLimiter,
    /// The quota table calls are charged by.
    pub(crate) table: QuotaTable,
    /// Whether the limit Gmail enforces was already told to the operator (once per mailbox).
    pub(crate) limit_told: AtomicBool,
    pub(crate) metrics: MetricsTable,
    pub(crate) policy: Arc<RetryPolicy>,
    pub(crate) timeout: Duration,
    /// Shared by every mailbox of the client (see `Inner::endpoint_answered`).
    pub(crate) endpoint_answered: Arc<AtomicBool>,
    /// The project's budget shared with other processes, once set.
    pub(crate) shared: Arc<OnceLock<SharedPacer>>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("user_id", &self.user_id)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Captures what google-gmail1 hides on a failure: the status and the Retry-After header.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    status: Option<u16>,
    retry_after: Option<String>,
}

impl Delegate for Recorder {
    fn http_failure(&mut self, resp: &Response, _err: Option<&serde_json::Value>) -> Retry {
        self.status = Some(resp.status().as_u16());
        self.retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // We retry ourselves, with quota and metrics in the loop.
        Retry::Abort
    }
}

fn error_parts(v: &serde_json::Value) -> (Option<u16>, Option<String>, String) {
    let e = &v["error"];
    let code = e["code"].as_u64().and_then(|c| u16::try_from(c).ok());
    let reason = e["errors"][0]["reason"].as_str().map(str::to_owned);
    let message = e["message"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| e.as_str().map(str::to_owned))
        .unwrap_or_else(|| truncate(&v.to_string()));
    (code, reason, message)
}

fn truncate(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn hint(header: Option<&str>, message: &str) -> Option<Duration> {
    let now = chrono::Utc::now();
    header
        .and_then(|h| parse_retry_after(h, now))
        .or_else(|| parse_retry_after_message(message, now))
}

/// Turn google-gmail1's result into our mirror type or a classified failure. A 2xx body
/// google-gmail1 could not decode (unpadded base64, numeric int64) is decoded here instead.
pub(crate) async fn settle<G, J>(
    result: google_gmail1::Result<(Response, G)>,
    rec: &Recorder,
) -> Result<J, Failure>
where
    J: From<G> + DeserializeOwned,
{
    use google_gmail1::Error as E;
    match result {
        Ok((_, g)) => Ok(J::from(g)),
        Err(E::JsonDecodeError(body, _)) => {
            if body.trim().is_empty() {
                // google-gmail1 turns a body cut off mid-stream into "" — a transport fault.
                return Err(Failure::Transport(
                    "empty or truncated response body".into(),
                ));
            }
            serde_json::from_str::<J>(&body).map_err(|e| {
                if e.is_eof() {
                    Failure::Transport(format!("truncated response body: {e}"))
                } else {
                    Failure::Decode(e.to_string())
                }
            })
        }
        Err(E::BadRequest(v)) => {
            let (code, reason, message) = error_parts(&v);
            let status = rec.status.or(code).unwrap_or(400);
            let retry_after = hint(rec.retry_after.as_deref(), &message);
            Err(Failure::Status {
                status,
                reason,
                message,
                retry_after,
            })
        }
        Err(E::Failure(resp)) => {
            let status = resp.status().as_u16();
            let header = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = match resp.into_body().collect().await {
                Ok(c) => String::from_utf8_lossy(&c.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            let message = truncate(body.trim());
            let retry_after = hint(header.as_deref(), &message);
            Err(Failure::Status {
                status,
                reason: None,
                message,
                retry_after,
            })
        }
        Err(E::HttpError(e)) => {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            Err(Failure::Transport(text))
        }
        Err(E::Io(e)) => Err(Failure::Transport(e.to_string())),
        Err(E::MissingToken(e)) => {
            if e.downcast_ref::<TransientTokenError>().is_some() {
                Err(Failure::Transport(e.to_string()))
            } else {
                Err(Failure::Token(e.to_string()))
            }
        }
        Err(other) => Err(Failure::Decode(other.to_string())),
    }
}

impl Mailbox {
    fn scrub(&self, text: String) -> String {
        match self.auth.known_secret() {
            Some(s) => s.scrub(&text),
            None => text,
        }
    }

    fn terminal(&self, method: Method, subject: &str, f: Failure, attempts: u32) -> GmailError {
        let name = method.name();
        match f {
            Failure::Status { status: 404, .. } => GmailError::NotFound {
                method: name,
                id: subject.to_string(),
            },
            Failure::Status {
                status: 400,
                message,
                ..
            } => GmailError::BadRequest {
                method: name,
                message: self.scrub(message),
            },
            Failure::Status {
                status: 401,
                message,
                ..
            } => GmailError::Auth(self.scrub(format!(
                "{name}: Gmail rejected the credentials (401) even after a token refresh: {message}"
            ))),
            Failure::Status {
                status, message, ..
            } => GmailError::Api {
                method: name,
                status,
                message: self.scrub(message),
            },
            Failure::Token(m) => GmailError::Auth(self.scrub(format!("{name}: {m}"))),
            Failure::Decode(m) => GmailError::Decode {
                method: name,
                message: self.scrub(m),
            },
            Failure::Transport(_) | Failure::Timeout => GmailError::RetriesExhausted {
                method: name,
                attempts,
                last: self.scrub(f.describe()),
            },
        }
    }

    /// Our pacing overran what Gmail enforces: the pacer has slowed down. The first time for
    /// this mailbox, say so in one line, with what the operator can do about it; later
    /// adjustments are debug detail.
    fn tell_limit(&self, slowed: Slowed) {
        let first = !self.limit_told.swap(true, Ordering::Relaxed);
        match slowed {
            Slowed::PerMinute(limit) => {
                let limit = limit.round();
                if !first {
                    tracing::debug!(mailbox = %self.user_id, units_per_minute = limit, "rate limited by Gmail; pacing lower");
                    return;
                }
                let advice = limit_advice(self.table, limit);
                tracing::warn!(
                    "Gmail refuses above ~{limit} units/min for {}; {advice}",
                    self.user_id
                );
            }
            Slowed::PerSecond(rate) => {
                let rate = rate.round();
                if first {
                    tracing::warn!(
                        "Gmail refuses above ~{rate} units/s for {}; pacing at that (--quota-units-per-sec sets it)",
                        self.user_id
                    );
                } else {
                    tracing::debug!(mailbox = %self.user_id, units_per_second = rate, "rate limited by Gmail; slowing down");
                }
            }
        }
    }

    /// Run `attempt` under the limiter and the retry policy. `subject` names the item (message
    /// or thread id) for NotFound.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        method: Method,
        subject: &str,
        mut attempt: F,
    ) -> Result<T, GmailError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let policy = &*self.policy;
        let started = Instant::now();
        let mut attempts: u32 = 0;
        let mut refreshed = false;
        let mut ticket;
        loop {
            attempts += 1;
            let outcome = {
                let _slot = self.limiter.slot().await;
                let cost = f64::from(self.table.cost(method));
                let (mut waited, admitted) = self.limiter.pacer.acquire(cost).await;
                ticket = admitted;
                if let Some(shared) = self.shared.get() {
                    match shared.acquire(cost).await {
                        Ok(w) => waited += w,
                        Err(reason) => {
                            let resets_in = match &reason {
                                SharedQuotaError::DayExhausted { resets_in, .. } => *resets_in,
                                _ => Duration::ZERO,
                            };
                            return Err(GmailError::QuotaDayExhausted {
                                method: method.name(),
                                reason,
                                resets_in,
                            });
                        }
                    }
                }
                self.metrics.throttled(method, waited);
                self.metrics.request(method);
                if attempts > 1 {
                    self.metrics.retry(method);
                }
                match tokio::time::timeout(self.timeout, attempt()).await {
                    Ok(r) => r,
                    Err(_) => Err(Failure::Timeout),
                }
            };
            let failure = match outcome {
                Ok(v) => {
                    self.endpoint_answered.store(true, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(f) => f,
            };
            if matches!(failure, Failure::Status { .. }) {
                self.endpoint_answered.store(true, Ordering::Relaxed);
            }
            if failure.is_rate_limit() {
                self.metrics.rate_limited(method);
                // Our pacing overran what Gmail enforces: learn its limit, whether or not
                // this call is retried.
                if !failure.is_concurrency_limit()
                    && let Some(slowed) = self.limiter.pacer.rate_limited(ticket, Instant::now())
                {
                    self.tell_limit(slowed);
                }
            }
            if matches!(failure, Failure::Status { status: 401, .. }) && !refreshed {
                // The token may have expired between fetch and use: one forced refresh.
                refreshed = true;
                self.auth.invalidate();
                tracing::debug!(method = method.name(), "401: refreshing the token once");
                continue;
            }
            if !failure.is_retryable() {
                self.metrics.failure(method);
                return Err(self.terminal(method, subject, failure, attempts));
            }
            let (hint, clamped) = clamp_hint(failure.retry_after());
            if clamped {
                self.metrics.retry_after_clamped();
                tracing::warn!(
                    method = method.name(),
                    max_secs = MAX_RETRY_AFTER.as_secs(),
                    "Retry-After longer than the maximum wait; capped"
                );
            }
            let delay = delay_for(policy, attempts, hint);
            // An endpoint that has never answered gets a short budget: a refused
            // or unresolvable first contact is a wrong or dead endpoint far more
            // often than a blip, and the operator should hear so in seconds.
            let first_contact = matches!(failure, Failure::Transport(_))
                && !self.endpoint_answered.load(Ordering::Relaxed);
            let (max_attempts, max_elapsed) = if first_contact {
                (
                    policy.max_attempts.min(FIRST_CONTACT_ATTEMPTS),
                    policy.max_elapsed.min(FIRST_CONTACT_BUDGET),
                )
            } else {
                (policy.max_attempts, policy.max_elapsed)
            };
            let out_of_budget =
                attempts >= max_attempts || started.elapsed().saturating_add(delay) > max_elapsed;
            if out_of_budget {
                self.metrics.failure(method);
                let last = self.scrub(failure.describe());
                tracing::warn!(method = method.name(), attempts, last = %last, "giving up");
                return Err(GmailError::RetriesExhausted {
                    method: method.name(),
                    attempts,
                    last,
                });
            }
            tracing::debug!(
                method = method.name(),
                attempt = attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                failure = %self.scrub(failure.describe()),
                "retrying"
            );
            tokio::time::sleep(delay).await;
            self.metrics.throttled(method, delay);
        }
    }
}

/// What the operator can do about a limit below the table's: a 2025 project that sees about
/// the 2026 figure is most likely on the 2026 table; anything else is someone else spending
/// the same quota, or a limit Google set lower.
fn limit_advice(table: QuotaTable, learned_per_minute: f64) -> String {
    let newer = f64::from(QuotaTable::Y2026.user_units_per_minute());
    if table == QuotaTable::Y2025 && learned_per_minute <= newer * 1.05 {
        "the project may be on the 2026 table: --quota-table 2026".to_string()
    } else {
        format!(
            "pacing at that (another app spending this user's quota, or a lower limit for the project: --quota-units-per-min {})",
            learned_per_minute.round()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_names_the_2026_table_when_a_2025_project_sees_its_limit() {
        let a = limit_advice(QuotaTable::Y2025, 5_700.0);
        assert!(a.contains("--quota-table 2026"), "{a}");
        let b = limit_advice(QuotaTable::Y2026, 3_000.0);
        assert!(b.contains("--quota-units-per-min 3000"), "{b}");
        let c = limit_advice(QuotaTable::Y2025, 12_000.0);
        assert!(!c.contains("--quota-table"), "{c}");
    }
}
