//! The private backend trait both stores implement (the object_store `ObjectStore` +
//! `PutMode::Create` shape, reduced to what a content-addressed store needs). `BlobStore`
//! owns hashing and key layout; a backend only moves bytes and reports put-if-absent results.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::StoreError;
use crate::gc::{AbandonedWrite, Removal};
use crate::layout::Layout;
use crate::sha::Sha256;

/// Object lookups in flight in the default [`Backend::heads`].
const HEADS_IN_FLIGHT: usize = 16;

/// Input for `put_stream`: chunks of the blob, in order.
pub type InputStream<'a> = BoxStream<'a, Result<Bytes, std::io::Error>>;

/// Output of `get_stream`: the object's chunks, in order.
pub type OutputStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// When a put's bytes must be on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Before the put returns.
    Immediate,
    /// Once a later `sync` returns: many puts share one flush.
    Deferred,
}

/// What a backend reports for a completed put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    pub sha256: Sha256,
    pub size: u64,
    pub created: bool,
    /// An object was there but damaged, and this put replaced it (fs only).
    pub repaired: bool,
}

/// What a backend reports for a completed `put_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Placed {
    pub created: bool,
    pub repaired: bool,
}

#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// Store `bytes` (whose digest is `sha`) under `key` unless an object is already there.
    /// Reports whether this call created (or repaired) the object. With [`Durability::Deferred`] the
    /// object may stay in volatile caches until the next [`Backend::sync`].
    async fn put_bytes(
        &self,
        key: &str,
        sha: &Sha256,
        bytes: Bytes,
        durability: Durability,
    ) -> Result<Placed, StoreError>;

    /// Make every deferred put that returned before this call durable.
    async fn sync(&self) -> Result<(), StoreError>;

    /// Store a stream of unknown size: hash while writing, then place it under
    /// `layout.key_for(digest)` unless already present.
    async fn put_stream(
        &self,
        layout: &Layout,
        input: InputStream<'_>,
    ) -> Result<Stored, StoreError>;

    /// The whole object, or `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// The object as a stream of chunks, or `None` when absent.
    async fn get_stream(&self, key: &str) -> Result<Option<OutputStream>, StoreError>;

    /// The object's size, or `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError>;

    /// [`Backend::head`] of each key, in order. Requests run a few at a time
    /// unless a backend can do better (fs: one blocking task for all).
    async fn heads(&self, keys: &[String]) -> Result<Vec<Option<u64>>, StoreError> {
        let mut sizes = Vec::with_capacity(keys.len());
        for some in keys.chunks(HEADS_IN_FLIGHT) {
            sizes.extend(
                futures::future::try_join_all(some.iter().map(|key| self.head(key))).await?,
            );
        }
        Ok(sizes)
    }

    /// Re-hash the stored bytes (streaming, not buffered); `None` when absent.
    async fn hash_object(&self, key: &str) -> Result<Option<Sha256>, StoreError>;

    /// Checks that the store can be used before any work starts, failing fast (no outage
    /// ride-out) with one clear error. S3: credentials found at all, the bucket answering,
    /// and with `write` a put-if-absent of `probe` (the empty blob's key: a real member of
    /// the namespace, and S3 needs no delete permission). fs: with `write`, a temporary file
    /// created and removed in the root (no object is left that no row references).
    async fn preflight(&self, probe: &str, write: bool) -> Result<(), StoreError>;

    /// Every object under `objects_prefix` (unordered for S3 beyond its lexicographic listing).
    fn list(&self, objects_prefix: String) -> BoxStream<'static, Result<Listed, StoreError>>;

    /// Removes the object at `key` unless it was modified after `cutoff`.
    async fn remove_if_unmodified(
        &self,
        key: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Removal, StoreError>;

    /// Moves the object at `from` to `to` unless it was modified after `cutoff` (`Kept`);
    /// `Absent` when there is none. The moved object's modification time is the time of
    /// the move (the trash's age counts from it, and a restored object looks young to gc).
    /// An object already at `to` is replaced: keys are content addresses, so it holds the
    /// same bytes.
    async fn move_if_unmodified(
        &self,
        from: &str,
        to: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Removal, StoreError>;

    /// Writes an empty object at `key`, reads back the time the store gave it, removes it.
    async fn clock_probe(&self, key: &str) -> Result<std::time::SystemTime, StoreError>;

    /// Unfinished writes under `objects_prefix` started before `cutoff`.
    async fn abandoned_writes(
        &self,
        objects_prefix: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Vec<AbandonedWrite>, StoreError>;

    /// Removes an unfinished write (absent already: success).
    async fn discard(&self, write: &AbandonedWrite) -> Result<(), StoreError>;
}

/// One listed object, before its key is parsed.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}
