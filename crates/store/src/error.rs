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

    /// Any other S3 failure.
    #[error("store {url}: S3 {op} {key} failed: {message}")]
    S3 {
        url: String,
        op: &'static str,
        key: String,
        message: String,
    },

    /// A background task panicked or was cancelled (a bug, not bad input).
    #[error("store {url}: internal task failed: {message}")]
    Task { url: String, message: String },
}
