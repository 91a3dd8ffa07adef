//! The webhook sink of `changes --post URL`: each batch is one POST of
//! `{"schema":1,"events":[…]}`, signed with HMAC-SHA256 over the exact body
//! ([`SIGNATURE_HEADER`]: `sha256=<hex>`) under `MAILINGEST_WEBHOOK_SECRET`,
//! with `Idempotency-Key: <first event's key>..<last event's key>` (a batch of
//! one: just its key) and every event's own key in the body.
//!
//! A 2xx hands the batch over. 5xx, 429, a timeout or a connection failure is
//! retried with the Gmail client's backoff (exponential, full jitter, the
//! server's Retry-After as a floor) until the receiver has been failing for
//! the outage budget. Any other answer stops at once: retrying a request the
//! receiver refuses would only stall the feed behind it.
//!
//! The secret and the URL's credentials (`https://user:pass@host/…`, sent as
//! Basic auth) never reach a log line, an error or `Debug`: errors and logs
//! name the host only.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use gmail::{RetryPolicy, Secret};
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::{info, warn};

use super::deliver::Sink;
use super::{FeedError, FeedEvent, SCHEMA_VERSION};

/// The header carrying the body's signature: `sha256=<64 hex>`.
pub const SIGNATURE_HEADER: &str = "X-Mailingest-Signature";

/// What the sink needs to know, checked by [`WebhookSink::new`].
pub struct WebhookConfig {
    /// The receiver's URL as given (may carry credentials).
    pub url: String,
    pub secret: Secret,
    /// How long the receiver may keep failing before the consumer stops.
    pub outage_budget: Duration,
    /// One POST's limit, answer included.
    pub request_timeout: Duration,
}

/// Posts batches to one receiver.
pub struct WebhookSink {
    client: Client<gmail::TlsConnector, Full<Bytes>>,
    /// The URL without its credentials.
    uri: hyper::Uri,
    host: String,
    basic_auth: Option<Secret>,
    secret: Secret,
    outage_budget: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, in words without the URL.
enum Attempt {
    Accepted,
    Retry {
        why: String,
        retry_after: Option<Duration>,
    },
    Refused(u16),
}

impl WebhookSink {
    /// Checks the URL (http or https, a host) and builds the client; a URL
    /// that cannot work is a [`FeedError::Config`] naming what is wrong,
    /// never the URL itself (it may hold a password).
    pub fn new(config: WebhookConfig) -> Result<WebhookSink, FeedError> {
        let mut url = url::Url::parse(config.url.trim())
            .map_err(|e| FeedError::Config(format!("--post: not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FeedError::Config(format!(
                "--post: unsupported scheme {:?} (use https:// or http://)",
                url.scheme()
            )));
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => return Err(FeedError::Config("--post: the URL has no host".into())),
        };
        let basic_auth = (!url.username().is_empty() || url.password().is_some()).then(|| {
            let pair = format!(
                "{}:{}",
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or(""))
            );
            Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        });
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        let uri: hyper::Uri = url.as_str().parse().map_err(|_| {
            FeedError::Config(format!(
                "--post: the URL for {host} is not a valid request target"
            ))
        })?;
        let connector = gmail::https_connector(true, Duration::from_secs(10))
            .map_err(|e| FeedError::Config(format!("--post: {e}")))?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(WebhookSink {
            client,
            uri,
            host,
            basic_auth,
            secret: config.secret,
            outage_budget: config.outage_budget,
            request_timeout: config.request_timeout,
            retry: RetryPolicy {
                max_attempts: u32::MAX,
                max_elapsed: config.outage_budget,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(5),
            },
        })
    }

    /// The receiver's host, as errors and logs name it.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn request(&self, body: &Bytes, key: &str) -> Result<Request<Full<Bytes>>, FeedError> {
        let mut req = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("mailingest/", env!("CARGO_PKG_VERSION")),
            )
            .header("Idempotency-Key", key)
            .header(SIGNATURE_HEADER, signature(&self.secret, body))
            .header("X-Mailingest-Schema", SCHEMA_VERSION.to_string())
            .body(Full::new(body.clone()))
            .map_err(|e| FeedError::Config(format!("--post: building the request: {e}")))?;
        if let Some(auth) = &self.basic_auth {
            let mut value = HeaderValue::from_str(auth.expose()).map_err(|_| {
                FeedError::Config("--post: the URL's credentials are not valid in a header".into())
            })?;
            value.set_sensitive(true);
            req.headers_mut().insert(AUTHORIZATION, value);
        }
        Ok(req)
    }

    async fn attempt(&self, body: &Bytes, key: &str) -> Result<Attempt, FeedError> {
        let req = self.request(body, key)?;
        let answer = tokio::time::timeout(self.request_timeout, async {
            let resp = self.client.request(req).await?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| gmail::parse_retry_after(v, chrono::Utc::now()));
            // Read the answer to the end so the connection can be reused.
            let _ = resp.into_body().collect().await;
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after))
        })
        .await;
        Ok(match answer {
            Err(_) => Attempt::Retry {
                why: format!("no answer within {}s", self.request_timeout.as_secs()),
                retry_after: None,
            },
            Ok(Err(e)) => Attempt::Retry {
                why: connect_failure(&e),
                retry_after: None,
            },
            Ok(Ok((status, _))) if (200..300).contains(&status) => Attempt::Accepted,
            Ok(Ok((status, retry_after))) if status == 429 || status >= 500 => Attempt::Retry {
                why: format!("HTTP {status}"),
                retry_after,
            },
            Ok(Ok((status, _))) => Attempt::Refused(status),
        })
    }
}

/// What went wrong connecting, without the URL hyper may put in its message.
fn connect_failure(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut cause = e.source();
    while let Some(inner) = cause {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return format!("connection failed: {}", io.kind());
        }
        cause = inner.source();
    }
    if e.is_connect() {
        "connection failed".into()
    } else {
        "the connection broke".into()
    }
}

/// A URL's userinfo as the user meant it: `%XX` decoded (and `+` kept).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key` as a header value: bytes outside visible ASCII (an address with
/// UTF-8 in it) percent-encoded; the body keeps the key as it is.
fn header_safe(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            0x21..=0x7e if b != b'%' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose().as_bytes());
    format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, body)))
}

/// `<first key>..<last key>`, or the one key of a batch of one.
fn batch_key(batch: &[FeedEvent]) -> String {
    match (batch.first(), batch.last()) {
        (Some(first), Some(last)) if batch.len() > 1 => {
            format!("{}..{}", first.idempotency_key, last.idempotency_key)
        }
        (Some(only), _) => only.idempotency_key.clone(),
        _ => String::new(),
    }
}

#[derive(serde::Serialize)]
struct Body<'a> {
    schema: u32,
    events: &'a [FeedEvent],
}

#[async_trait]
impl Sink for WebhookSink {
    async fn deliver(&mut self, batch: &[FeedEvent]) -> Result<(), FeedError> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let body = serde_json::to_vec(&Body {
            schema: SCHEMA_VERSION,
            events: batch,
        })
        .map(Bytes::from)
        .map_err(|e| FeedError::Config(format!("encoding a batch: {e}")))?;
        let key = header_safe(&batch_key(batch));
        let mut failing_since: Option<Instant> = None;
        let mut retry = 0u32;
        loop {
            retry = retry.saturating_add(1);
            let (why, hint) = match self.attempt(&body, &key).await? {
                Attempt::Accepted => {
                    if failing_since.is_some() {
                        info!(host = %self.host, "receiver answers again");
                    }
                    return Ok(());
                }
                Attempt::Refused(status) => {
                    return Err(FeedError::Rejected {
                        host: self.host.clone(),
                        status,
                        first: first.idempotency_key.clone(),
                        last: last.idempotency_key.clone(),
                    });
                }
                Attempt::Retry { why, retry_after } => (why, retry_after),
            };
            let since = *failing_since.get_or_insert_with(Instant::now);
            let (hint, _) = gmail::clamp_hint(hint);
            let wait = gmail::delay_for(&self.retry, retry, hint);
            if since.elapsed() + wait > self.outage_budget {
                return Err(FeedError::Unreachable {
                    host: self.host.clone(),
                    budget_secs: self.outage_budget.as_secs(),
                    last_failure: why,
                    first: first.idempotency_key.clone(),
                });
            }
            warn!(
                host = %self.host,
                failure = %why,
                retry_in_ms = wait.as_millis() as u64,
                first = %first.idempotency_key,
                "receiver failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}
