//! `gmail`: the Gmail API client mailingest uses. It wraps google-gmail1 + yup-oauth2 behind a
//! small typed API (profile, labels, list pages, minimal/raw messages, history) and adds what
//! the generated client lacks: auth from an `--auth` spec, a per-mailbox quota limiter and
//! concurrency cap, retries with backoff that honour Retry-After, tolerant decoding of
//! unpadded base64url and int64-as-string fields, and per-method metrics.

mod auth;
mod b64;
mod call;
mod client;
mod config;
mod error;
mod ids;
mod limiter;
mod log_filter;
mod metrics;
mod paginate;
mod query;
mod quota_day;
mod quota_table;
mod retry;
mod secret;
mod shared_quota;
mod transport;
mod types;
mod wire;

pub use auth::{AuthSpec, READONLY_SCOPE, default_token_cache, login};
pub use b64::decode_base64url;
pub use client::GmailClient;
pub use config::{ClientConfig, DEFAULT_ENDPOINT, QuotaConfig, RetryPolicy};
pub use error::GmailError;
pub use ids::{is_gmail_id, is_label_id, printable as printable_id};
pub use log_filter::{SECRET_BEARING_LOG_TARGETS, log_metadata_is_safe};
pub use metrics::{ApiMetrics, Method, MethodMetrics};
pub use query::build_q;
pub use quota_day::{pacific_date, pacific_day_start, until_pacific_midnight};
pub use quota_table::{QuotaTable, UnknownQuotaTable};
// Also used by ingest's webhook sink, so both back off the same way.
pub use retry::{MAX_RETRY_AFTER, clamp_hint, delay_for, parse_retry_after};
pub use secret::Secret;
pub use shared_quota::{SharedQuota, SharedQuotaError};
pub use transport::{TlsConnector, https_connector};
pub use types::{
    HistoryPage, HistoryRecord, Label, LabelChange, LabelType, ListQuery, MessageMeta,
    MessageMinimalRef, MessagePage, MessageRef, Profile, RawMessage, ThreadMinimal, ThreadPage,
    ThreadRef,
};
