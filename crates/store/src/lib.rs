//! Content-addressed attachment store: blobs are keyed by the sha256 of their bytes under
//! `<prefix>/sha256/<hh>/<hh>/<64 hex>`, written put-if-absent, and verifiable.
//!
//! * [`BlobStore::from_url`]: a path or `file:///dir` (filesystem), or
//!   `s3://bucket[/path][?path_style=true|false]` (S3 via aws-sdk-s3 and the standard AWS
//!   chain: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_PROFILE`, env credentials, SSO…;
//!   `MAILINGEST_S3_FORCE_PATH_STYLE=true|false` switches path-style addressing, which is the
//!   default when a custom endpoint is set). The S3 URL's path is prepended to the prefix.
//! * [`BlobStore::put`] / [`BlobStore::put_stream`] / [`BlobStore::put_reader`] hash the bytes
//!   themselves (callers never supply a digest) and report `created = false` when the object
//!   was already there: fs via staging file + fsync + `link(2)` (EEXIST), S3 via HEAD and
//!   `PutObject If-None-Match: *` (412) with an `x-amz-checksum-sha256` on every upload and
//!   multipart above [`StoreOptions::multipart_threshold`] (16 MiB by default).
//! * [`BlobStore::put_deferred`] + [`BlobStore::sync`]: the same put-if-absent, but the fs
//!   backend skips its per-object fsyncs and one sync (a `syncfs(2)` on Linux) makes every
//!   earlier deferred put durable; [`BlobStore::is_durable`] checks a put's [`PendingSync`]
//!   ticket. For callers that record many blobs at once (the ingest writer syncs before each
//!   batch's transaction, so rows still never point at a blob a machine crash could lose).
//! * [`BlobStore::get`] / [`BlobStore::get_stream`] re-hash on the way out;
//!   [`BlobStore::verify`] reports `Ok | Missing | Corrupt { actual }`; [`BlobStore::list`]
//!   streams every key (for verification); [`BlobStore::objects`] every object with its size
//!   and age, [`BlobStore::remove_if_unmodified`] and [`BlobStore::abandoned_writes`] /
//!   [`BlobStore::discard`] are what garbage collection needs (the caller decides what is
//!   garbage). A put that finds its content already stored refreshes the object's mtime (fs),
//!   so an object some writer is about to reference never looks old.
//!   [`BlobStore::trash_if_unmodified`] is a removal's first phase (the object moves to
//!   `<prefix>/.trash/sha256/…`, [`BlobStore::restore`] brings it back,
//!   [`BlobStore::remove_trashed_if_unmodified`] deletes it after a longer period), and
//!   [`BlobStore::clock`] reads the store's clock so gc can refuse to judge ages by a skewed one.
//!
//! * Every call but a stream put rides out an outage of the store (unreachable, or 5xx) for
//!   [`StoreOptions::outage_budget`] (60 s by default) before it fails.
//!
//! Tests: `source scripts/s3-server.sh && s3_server_start && cargo test -p store` (the S3
//! half of the conformance suite fails, loudly, without the server's environment).
//!
//! ```no_run
//! # async fn demo() -> Result<(), store::StoreError> {
//! let store = store::BlobStore::from_url("/var/lib/mailingest/blobs", "org-1").await?;
//! let out = store.put(bytes::Bytes::from_static(b"hello")).await?;
//! assert_eq!(store.get(&out.sha256).await?, "hello");
//! # Ok(()) }
//! ```

mod backend;
mod error;
mod fs;
mod gc;
mod layout;
mod location;
mod options;
mod outage;
mod s3;
mod sha;
mod store;

pub use backend::{InputStream, OutputStream};
pub use error::StoreError;
pub use gc::{AbandonedKind, AbandonedWrite, ClockReading, Removal, StoredObject};
pub use options::{
    DEFAULT_MULTIPART_THRESHOLD, DEFAULT_OUTAGE_BUDGET, DEFAULT_PART_SIZE, StoreOptions,
};
pub use sha::Sha256;
pub use store::{BlobStore, PendingSync, PutOutcome, Verification};
