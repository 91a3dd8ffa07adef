//! Content-addressed attachment store: blobs are keyed by the sha256 of their bytes under
//! `<prefix>/sha256/<hh>/<hh>/<64 hex>`, written put-if-absent, and verifiable.
//!
//! Backends: the local filesystem (a path or `file:///…`) and S3 (`s3://bucket/prefix`, via
//! aws-sdk-s3 and the standard AWS configuration chain). See [`BlobStore::from_url`].
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
mod layout;
mod location;
mod options;
mod s3;
mod sha;
mod store;

pub use backend::InputStream;
pub use error::StoreError;
pub use options::{DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, StoreOptions};
pub use sha::Sha256;
pub use store::{BlobStore, PutOutcome, Verification};
