//! `StoreError`: the one error type of the store crate. Backend errors (std::io, the AWS SDK)
//! are mapped into it at the backend boundary so callers match on meaning, not on SDK types.
//! Every variant that concerns a configured store names its URL (never a secret: URLs with
//! credentials in them are rejected by `from_url`, and SDK errors do not carry secrets).

use crate::sha::Sha256;

/// Errors from the attachment store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL could not be understood (unknown scheme, bad bucket, bad option…).
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The configured key prefix is not a safe, relative key path.
    #[error("invalid store prefix {prefix:?}: {reason}")]
    InvalidPrefix { prefix: String, reason: String },

    /// A string is not a 64-character hex sha256.
    #[error("invalid sha256 {input:?}: expected 64 hex characters")]
    InvalidSha256 { input: String },

    /// A local filesystem operation failed.
    #[error("store {url}: {op} {path}: {source}")]
    Io {
        url: String,
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Reading the caller's input stream failed (nothing was stored).
    #[error("store {url}: reading the input to store failed: {source}")]
    Input {
        url: String,
        #[source]
        source: std::io::Error,
    },

    /// The object does not exist.
    #[error("store {url}: object {key} not found")]
    NotFound { url: String, key: String },

    /// An object exists under the key but its content does not hash to the key.
    #[error("store {url}: object {key} is corrupt (its bytes hash to {actual})")]
    Corrupt {
        url: String,
        key: String,
        actual: Sha256,
    },

    /// An object exists under the key with a size different from the bytes being stored,
    /// i.e. the stored object is damaged; `verify` will report it.
    #[error("store {url}: existing object {key} has {actual} bytes, expected {expected}")]
    SizeMismatch {
        url: String,
        key: String,
        expected: u64,
        actual: u64,
    },

    /// The S3 endpoint could not be reached (connection refused, DNS, timeout).
    #[error("store {url}: cannot reach the S3 endpoint{endpoint}: {message}")]
    Unreachable {
        url: String,
        /// `" <endpoint URL>"` when a custom endpoint is configured, else empty.
        endpoint: String,
        message: String,
    },

    /// The bucket named in the store URL does not exist.
    #[error("store {url}: bucket {bucket:?} does not exist")]
    BucketNotFound { url: String, bucket: String },

    /// The server refused the credentials or the permissions are insufficient.
    #[error(
        "store {url}: access denied ({message}); check the AWS credentials (env, profile) and the bucket policy"
    )]
    AccessDenied { url: String, message: String },

    /// The AWS credential chain found no credentials for an S3 store.
    #[error(
        "store {url}: no AWS credentials found ({message}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance or task role"
    )]
    NoCredentials { url: String, message: String },

    /// Any other S3 failure.
    #[error("store {url}: S3 {op} {key} failed: {message}")]
    S3 {
        url: String,
        op: &'static str,
        key: String,
        message: String,
        /// The HTTP status, when the server answered at all.
        status: Option<u16>,
    },

    /// The store stayed unreachable (or kept answering 5xx) for longer than the outage
    /// budget ([`crate::StoreOptions::outage_budget`]); `last` is the final failure.
    #[error("store {url}: still failing after riding out {waited_secs} s of outage: {last}")]
    OutageOutlasted {
        url: String,
        waited_secs: u64,
        last: String,
    },

    /// A background task panicked or was cancelled (a bug, not bad input).
    #[error("store {url}: internal task failed: {message}")]
    Task { url: String, message: String },

    /// `discard` was handed something `abandoned_writes` of this store did not list.
    #[error("store {url}: {name:?} is not an unfinished write of this store")]
    NotAnAbandonedWrite { url: String, name: String },
}

impl StoreError {
    /// A failure that may go away by itself: the endpoint unreachable, or the server
    /// answering 5xx (S3's 500 InternalError, 503 SlowDown / ServiceUnavailable). Such a
    /// call is retried through an outage; anything else (a bad URL, access denied, a missing
    /// bucket, a damaged object, a local I/O error) is reported at once.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } => true,
            StoreError::S3 {
                status: Some(s), ..
            } => (500..600).contains(s),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(status: Option<u16>) -> StoreError {
        StoreError::S3 {
            url: "s3://b".into(),
            op: "PutObject",
            key: "k".into(),
            message: "m".into(),
            status,
        }
    }

    #[test]
    fn only_outages_are_transient() {
        assert!(s3(Some(500)).is_transient());
        assert!(s3(Some(503)).is_transient());
        assert!(!s3(Some(400)).is_transient());
        assert!(!s3(Some(404)).is_transient());
        assert!(!s3(None).is_transient());
        let unreachable = StoreError::Unreachable {
            url: "s3://b".into(),
            endpoint: String::new(),
            message: "refused".into(),
        };
        assert!(unreachable.is_transient());
        let denied = StoreError::AccessDenied {
            url: "s3://b".into(),
            message: "no".into(),
        };
        assert!(!denied.is_transient());
        let gone = StoreError::OutageOutlasted {
            url: "s3://b".into(),
            waited_secs: 60,
            last: "refused".into(),
        };
        assert!(
            !gone.is_transient(),
            "a given-up outage is not retried again"
        );
    }
}
