//! Gmail request dispatch: path routing, user resolution, admission (concurrency, quota),
//! injected faults, then the endpoint handler.

use std::time::Duration;

use http::{Method, StatusCode};

use crate::handlers;
use crate::limits::{Admission, Limit, Refusal};
use crate::state::State;
use crate::wire::ApiResponse;

/// A Gmail API request, independent of the HTTP stack (also used for batch parts).
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    pub method: Method,
    /// Path without query, starting at "/gmail/v1/…".
    pub path: String,
    /// Decoded query parameters (repeats kept).
    pub params: Vec<(String, String)>,
    pub bearer: Option<String>,
}

impl ApiRequest {
    pub fn new(
        method: Method,
        path: &str,
        query: Option<&str>,
        authorization: Option<&str>,
    ) -> Self {
        let params = query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let bearer = authorization.and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
                .map(|t| t.trim().to_string())
        });
        Self {
            method,
            path: path.to_string(),
            params,
            bearer,
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn params_all(&self, name: &str) -> Vec<String> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Which endpoint a path names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Endpoint {
    Profile,
    MessagesList,
    MessagesGet(String),
    AttachmentsGet { message: String, attachment: String },
    ThreadsList,
    ThreadsGet(String),
    HistoryList,
    LabelsList,
}

impl Endpoint {
    pub fn method_name(&self) -> &'static str {
        match self {
            Endpoint::Profile => "users.getProfile",
            Endpoint::MessagesList => "users.messages.list",
            Endpoint::MessagesGet(_) => "users.messages.get",
            Endpoint::AttachmentsGet { .. } => "users.messages.attachments.get",
            Endpoint::ThreadsList => "users.threads.list",
            Endpoint::ThreadsGet(_) => "users.threads.get",
            Endpoint::HistoryList => "users.history.list",
            Endpoint::LabelsList => "users.labels.list",
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split "/gmail/v1/users/{userId}/…" into (userId, endpoint).
pub(crate) fn route(method: &Method, path: &str) -> Option<(String, Endpoint)> {
    let rest = path
        .trim_start_matches('/')
        .strip_prefix("gmail/v1/users/")?;
    let segs: Vec<String> = rest.split('/').map(percent_decode).collect();
    let user = segs.first()?.clone();
    if user.is_empty() || method != Method::GET {
        return None;
    }
    let tail: Vec<&str> = segs[1..].iter().map(String::as_str).collect();
    let ep = match tail.as_slice() {
        ["profile"] => Endpoint::Profile,
        ["messages"] => Endpoint::MessagesList,
        ["messages", id] => Endpoint::MessagesGet((*id).to_string()),
        ["messages", m, "attachments", a] => Endpoint::AttachmentsGet {
            message: (*m).to_string(),
            attachment: (*a).to_string(),
        },
        ["threads"] => Endpoint::ThreadsList,
        ["threads", id] => Endpoint::ThreadsGet((*id).to_string()),
        ["history"] => Endpoint::HistoryList,
        ["labels"] => Endpoint::LabelsList,
        _ => return None,
    };
    Some((user, ep))
}

/// Serve one Gmail request. `in_batch` skips per-request latency and connection drops
/// (those apply to the enclosing batch request).
pub(crate) async fn dispatch(state: &State, req: &ApiRequest, in_batch: bool) -> ApiResponse {
    let Some((user, endpoint)) = route(&req.method, &req.path) else {
        return ApiResponse::error(
            StatusCode::NOT_FOUND,
            "notFound",
            &format!("Method not found: {} {}", req.method, req.path),
        );
    };
    let mailbox = match state.resolve_user(&user, req.bearer.as_deref()) {
        Ok(m) => m,
        Err(e) if e == "unauthenticated" => {
            return ApiResponse::error(
                StatusCode::UNAUTHORIZED,
                "authError",
                "Request had invalid authentication credentials.",
            );
        }
        Err(e) => return ApiResponse::error(StatusCode::FORBIDDEN, "forbidden", &e),
    };
    if let Some((_, quota_user)) = req.params.iter().find(|(k, _)| k == "quotaUser") {
        state.limits.quota_user(quota_user);
    }
    let quota = state.quota();
    let method = endpoint.method_name();
    if !state.limits.enter(&mailbox, &quota) {
        state.limits.count_throttled(&mailbox, method);
        state.limits.fault("concurrency");
        return ApiResponse::error(
            StatusCode::TOO_MANY_REQUESTS,
            "rateLimitExceeded",
            "Too many concurrent requests for user",
        );
    }
    // Leave on drop too: a client that disconnects mid-latency must not leak a slot.
    let _slot = Slot {
        state,
        mailbox: &mailbox,
    };
    admitted(state, req, &mailbox, &endpoint, &quota, in_batch).await
}

/// A held concurrency slot, released when the request finishes or is cancelled.
struct Slot<'a> {
    state: &'a State,
    mailbox: &'a str,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.state.limits.leave(self.mailbox);
    }
}

async fn admitted(
    state: &State,
    req: &ApiRequest,
    mailbox: &str,
    endpoint: &Endpoint,
    quota: &crate::config::Quota,
    in_batch: bool,
) -> ApiResponse {
    let faults = state.faults();
    if !in_batch && (faults.latency_ms > 0 || faults.latency_jitter_ms > 0) {
        let ms = faults.latency_ms + state.random_below(faults.latency_jitter_ms);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Admission::Refused(refusal) = state.limits.charge(mailbox, endpoint.method_name(), quota)
    {
        state.limits.fault("quota");
        return quota_refusal(refusal, quota.use_403);
    }
    if state.chance(faults.error_rate) {
        state.limits.fault("backendError");
        return ApiResponse::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backendError",
            "Backend Error",
        );
    }
    if state.chance(faults.unavailable_rate) {
        state.limits.fault("unavailable");
        return ApiResponse::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "backendError",
            "The service is currently unavailable.",
        );
    }
    let mut resp = handlers::handle(state, req, mailbox, endpoint, &faults);
    if !in_batch && state.chance(faults.drop_rate) {
        state.limits.fault("dropConnection");
        resp.drop_connection = true;
    }
    resp
}

/// Gmail's answer to a request over quota, with `Retry-After` in whole seconds
/// (rounded up, at least 1).
fn quota_refusal(refusal: Refusal, use_403: bool) -> ApiResponse {
    let secs = refusal.wait.as_millis().div_ceil(1000).max(1) as u64;
    let reason = refusal.limit.reason(use_403);
    let (status, message) = match refusal.limit {
        Limit::User if use_403 => (
            StatusCode::FORBIDDEN,
            format!("User-rate limit exceeded. Retry after {secs}s"),
        ),
        Limit::User | Limit::Project => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Quota exceeded for quota metric 'Queries'. Retry after {secs}s"),
        ),
        Limit::Daily => (
            StatusCode::FORBIDDEN,
            format!("Daily Limit Exceeded. Retry after {secs}s"),
        ),
    };
    let mut r = ApiResponse::error(status, reason, &message);
    r.retry_after = Some(secs);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_gmail_paths() {
        let g = Method::GET;
        assert_eq!(
            route(&g, "/gmail/v1/users/me/messages/abc"),
            Some(("me".into(), Endpoint::MessagesGet("abc".into())))
        );
        assert_eq!(
            route(&g, "/gmail/v1/users/a%40b.com/messages/m/attachments/x"),
            Some((
                "a@b.com".into(),
                Endpoint::AttachmentsGet {
                    message: "m".into(),
                    attachment: "x".into()
                }
            ))
        );
        assert_eq!(route(&g, "/gmail/v1/users/me/bogus"), None);
        assert_eq!(route(&Method::POST, "/gmail/v1/users/me/messages"), None);
    }
}
