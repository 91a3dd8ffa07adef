//! The crate's single error type. Every message here is built from method names, ids,
//! status codes and Gmail's own error text — never from tokens, keys or client secrets.

use std::path::PathBuf;

/// Everything a [`crate::GmailClient`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GmailError {
    /// The message or thread does not exist (404). Callers skip and record it.
    #[error("{method}: {id} not found")]
    NotFound { method: &'static str, id: String },

    /// `history.list` answered 404: the start id is older than Gmail keeps. Fall back to a
    /// windowed backfill.
    #[error("history.list: startHistoryId {start_history_id} has expired")]
    HistoryExpired { start_history_id: u64 },

    /// Credentials are missing, unreadable or rejected (401 after one refresh).
    #[error("gmail auth: {0}")]
    Auth(String),

    /// A retryable failure persisted past the retry budget.
    #[error("{method}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        method: &'static str,
        attempts: u32,
        last: String,
    },

    /// Gmail rejected the request as malformed (400). Never retried.
    #[error("{method}: bad request: {message}")]
    BadRequest {
        method: &'static str,
        message: String,
    },

    /// Any other non-retryable HTTP status (e.g. 403 without a rate-limit reason).
    #[error("{method}: HTTP {status}: {message}")]
    Api {
        method: &'static str,
        status: u16,
        message: String,
    },

    /// The response could not be decoded (bad JSON, base64 or int64-as-string field).
    #[error("{method}: cannot decode response: {message}")]
    Decode {
        method: &'static str,
        message: String,
    },

    /// A list stream's `nextPageToken` pointed back at a page already fetched (or an empty
    /// page kept answering with its own token, 100 times in a row). Following it would loop
    /// forever and re-serve items, so the stream ends with this instead.
    #[error("{method}: nextPageToken repeats an earlier page; listing stopped to avoid a loop")]
    PageTokenCycle { method: &'static str },

    /// The project's daily quota units are spent (`SharedQuota` said so): the call was not
    /// sent. Nothing can go until the quota day rolls over at midnight Pacific time.
    #[error("{method}: {reason}")]
    QuotaDayExhausted {
        method: &'static str,
        reason: crate::SharedQuotaError,
        resets_in: std::time::Duration,
    },

    /// An id that is not a Gmail id (see [`crate::is_gmail_id`]) was to be sent: the call
    /// was not made. `id` is as [`crate::printable_id`] prints it.
    #[error("{method}: {id} is not a Gmail id; not sent")]
    InvalidId { method: &'static str, id: String },

    /// The client configuration is invalid (endpoint, auth spec, limits).
    #[error("gmail config: {0}")]
    Config(String),

    /// A local file (credentials, token cache) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
