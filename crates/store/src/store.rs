//! `BlobStore`: the public face of the store. It parses the URL, owns the key layout and the
//! hashing (callers never supply a digest), and dispatches to the fs or S3 backend.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use futures::stream::{BoxStream, StreamExt};
use tokio::io::AsyncRead;

use crate::backend::{Backend, Durability, OutputStream};
use crate::error::StoreError;
use crate::gc::{AbandonedWrite, ClockReading, Removal, StoredObject};
use crate::layout::Layout;
use crate::location::{Location, redact};
use crate::options::StoreOptions;
use crate::outage::ride_out;
use crate::sha::{Hasher, Sha256, digest_bytes};

/// Result of a put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// Digest of the bytes written (Display = lowercase hex).
    pub sha256: Sha256,
    pub size: u64,
    /// The object key (see [`BlobStore::key_for`]).
    pub key: String,
    /// `true` when this call stored the object, `false` when it was already there.
    pub created: bool,
    /// `true` when an object was already there but damaged (its bytes did not match the
    /// key: a torn write after a power loss, a truncated or altered file) and this call
    /// replaced it atomically with the correct bytes (`created` is then `false`). fs backend
    /// only; see [`BlobStore::put`] for when an existing object is checked.
    pub repaired: bool,
    /// `None`: durable when the put returned ([`BlobStore::put`]). `Some`: written by
    /// [`BlobStore::put_deferred`] and durable once [`BlobStore::is_durable`] says so.
    pub pending: Option<PendingSync>,
}

/// A deferred put's place in this store's order of completed puts. The put is durable once a
/// [`BlobStore::sync`] that started after it has returned; [`BlobStore::is_durable`] checks.
/// Tickets of one store are ordered, so a batch needs to keep only its largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingSync(u64);

/// Result of [`BlobStore::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The object exists and its bytes hash to its key.
    Ok,
    /// No object under the key.
    Missing,
    /// The object exists but its bytes hash to `actual`.
    Corrupt { actual: Sha256 },
}

/// A content-addressed blob store. Cheap to clone; safe to share between tasks.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    layout: Layout,
    backend: Box<dyn Backend>,
    /// Deferred puts completed so far; the n-th gets ticket n.
    deferred_puts: AtomicU64,
    /// Every ticket up to this one is durable.
    synced_through: AtomicU64,
    /// See [`StoreOptions::outage_budget`].
    outage_budget: Duration,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hand-written so no backend internals (clients, credentials) can ever be printed.
        f.debug_struct("BlobStore")
            .field("url", &self.inner.url)
            .field("objects_prefix", &self.inner.layout.objects_prefix())
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Open a store.
    ///
    /// * a path or `file:///dir`: the filesystem backend rooted at that directory (created if
    ///   absent); object keys are paths relative to it.
    /// * `s3://bucket[/path][?path_style=true|false]`: the S3 backend. Region, credentials and
    ///   endpoint come from the standard AWS chain (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, env, SSO…).
    ///   The URL's path, if any, is prepended to `prefix`: `s3://b/archive` with prefix `org1`
    ///   stores under `archive/org1/sha256/…`, and keys returned are full object keys.
    ///   Path-style addressing: `?path_style=`, else `MAILINGEST_S3_FORCE_PATH_STYLE=true|false`,
    ///   else on when a custom endpoint is configured (S3-compatible servers).
    ///   IAM permissions needed: s3:GetObject, s3:PutObject, s3:AbortMultipartUpload and
    ///   s3:ListBucket (without it S3 answers HEAD of a missing key with 403, not 404).
    ///   Nothing is contacted until the first operation, which checks the bucket once.
    ///
    /// `prefix` (the org id by default) may be empty or contain `/`-separated segments of
    /// `[A-Za-z0-9._@+=-]` not starting with `.`.
    pub async fn from_url(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::from_url_with(url, prefix, StoreOptions::default()).await
    }

    /// [`BlobStore::from_url`] with explicit options.
    pub async fn from_url_with(
        url: &str,
        prefix: &str,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let display_url = redact(url);
        let outage_budget = options.outage_budget;
        let location = Location::parse(url)?;
        let (layout, backend): (Layout, Box<dyn Backend>) = match location {
            Location::Fs { root } => (
                Layout::new(&[prefix])?,
                Box::new(crate::fs::FsBackend::open(display_url.clone(), root).await?),
            ),
            Location::S3 {
                bucket,
                url_prefix,
                path_style,
            } => (
                Layout::new(&[&url_prefix, prefix])?,
                Box::new(
                    crate::s3::S3Backend::open(display_url.clone(), bucket, path_style, &options)
                        .await?,
                ),
            ),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                url: display_url,
                layout,
                backend,
                deferred_puts: AtomicU64::new(0),
                synced_through: AtomicU64::new(0),
                outage_budget,
            }),
        })
    }

    /// The store URL as given (credentials, if any were present, redacted).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Writes a small record once under `<prefix>/<path>`, beside the objects
    /// (an anchored ledger head): put-if-absent, so on S3 a record is never
    /// replaced (`If-None-Match: *`): the same bytes again return `false`,
    /// other bytes an error. On the filesystem an existing record with other
    /// bytes is treated as a damaged object and replaced, as every fs put
    /// self-repairs: write-once records belong in a bucket. `path`'s
    /// segments are validated as the prefix's are. Returns whether this call
    /// created it. Rides out an outage like every put.
    pub async fn put_record(&self, path: &str, bytes: Bytes) -> Result<bool, StoreError> {
        let key = self.inner.layout.record_key(path)?;
        let sha = Sha256::digest(&bytes);
        let placed = self
            .riding_out("put record", || {
                self.inner
                    .backend
                    .put_bytes(&key, &sha, bytes.clone(), Durability::Immediate)
            })
            .await?;
        Ok(placed.created)
    }

    /// A record written by [`BlobStore::put_record`], or `None` when absent.
    pub async fn get_record(&self, path: &str) -> Result<Option<Bytes>, StoreError> {
        let key = self.inner.layout.record_key(path)?;
        self.riding_out("get record", || self.inner.backend.get(&key))
            .await
    }

    /// `<prefix>/sha256/<hh>/<hh>/<64 hex>`: for S3 the full object key in the bucket
    /// (including the URL's path), for the filesystem the path relative to the root directory.
    pub fn key_for(&self, sha: &Sha256) -> String {
        self.inner.layout.key_for(sha)
    }

    /// Store `bytes` unless an object with the same digest exists (put-if-absent). The
    /// object is durable when this returns.
    ///
    /// Self-repair (fs backend): when the object exists, its bytes are read back and compared
    /// with the bytes being stored (every put, immediate or deferred, and every
    /// [`BlobStore::put_stream`], which re-hashes the existing file). A damaged object (size
    /// or content differs) is replaced atomically by a staging file renamed over it, with the
    /// same durability as a new object, and the outcome says `repaired`. The cost is one
    /// read of the object on a dedup hit, which re-runs pay instead of writing nothing.
    pub async fn put(&self, bytes: Bytes) -> Result<PutOutcome, StoreError> {
        self.put_with(bytes, Durability::Immediate).await
    }

    /// [`BlobStore::put`], but durability may wait for the next [`BlobStore::sync`], so that
    /// many puts share one flush (the fs backend skips its per-object fsyncs; S3 objects are
    /// durable anyway). The object is readable at once. Before recording anywhere that the
    /// object exists, call `sync` and check [`BlobStore::is_durable`] with the outcome's
    /// `pending` ticket: a crash of the machine (not only of the process) before the sync may
    /// lose the object.
    pub async fn put_deferred(&self, bytes: Bytes) -> Result<PutOutcome, StoreError> {
        self.put_with(bytes, Durability::Deferred).await
    }

    async fn put_with(
        &self,
        bytes: Bytes,
        durability: Durability,
    ) -> Result<PutOutcome, StoreError> {
        let sha = digest_bytes(&bytes).await.map_err(|e| self.task_error(e))?;
        let key = self.key_for(&sha);
        let size = bytes.len() as u64;
        let placed = self
            .riding_out("put", || {
                self.inner
                    .backend
                    .put_bytes(&key, &sha, bytes.clone(), durability)
            })
            .await?;
        let crate::backend::Placed { created, repaired } = placed;
        if repaired {
            tracing::warn!(store = %self.inner.url, %key, size, "replaced a damaged object");
        }
        // Numbered only once the backend is done with it, so a sync that reads a count at
        // least this large started after these writes.
        let pending = (durability == Durability::Deferred)
            .then(|| PendingSync(self.inner.deferred_puts.fetch_add(1, Ordering::AcqRel) + 1));
        tracing::debug!(store = %self.inner.url, %key, size, created, repaired, deferred = pending.is_some(), "put");
        Ok(PutOutcome {
            sha256: sha,
            size,
            key,
            created,
            repaired,
            pending,
        })
    }

    /// Make every [`BlobStore::put_deferred`] that returned before this call durable (fs: one
    /// `syncfs(2)` on Linux). Cheap when there is nothing to flush. An error means nothing
    /// new is known to be durable; a later sync tries again.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let through = self.inner.deferred_puts.load(Ordering::Acquire);
        if through <= self.inner.synced_through.load(Ordering::Acquire) {
            return Ok(());
        }
        self.riding_out("sync", || self.inner.backend.sync())
            .await?;
        self.inner
            .synced_through
            .fetch_max(through, Ordering::AcqRel);
        Ok(())
    }

    /// Checks, before any work starts, that the store can be used, failing fast (no outage
    /// ride-out: a store that is down when a run starts is reported at once) with one clear
    /// error naming the store: credentials found (S3), the bucket there and answering, and,
    /// with `write`, that it can be written (S3: the empty blob, put-if-absent, a real member
    /// of the namespace; fs: a temporary file in the root, removed).
    pub async fn preflight(&self, write: bool) -> Result<(), StoreError> {
        let probe = self.key_for(&Sha256::digest(b""));
        self.inner.backend.preflight(&probe, write).await
    }

    /// Whether the deferred put that returned `ticket` is durable.
    pub fn is_durable(&self, ticket: PendingSync) -> bool {
        ticket.0 <= self.inner.synced_through.load(Ordering::Acquire)
    }

    /// Store a stream of chunks (size unknown up front), hashing as it is written. Memory use
    /// is bounded by the chunk size: the fs backend writes a staging file, S3 spools to a
    /// temporary file and uploads from it (multipart when large).
    pub async fn put_stream<S>(&self, input: S) -> Result<PutOutcome, StoreError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send,
    {
        let stored = self
            .inner
            .backend
            .put_stream(&self.inner.layout, input.boxed())
            .await?;
        let key = self.key_for(&stored.sha256);
        if stored.repaired {
            tracing::warn!(store = %self.inner.url, %key, size = stored.size, "replaced a damaged object");
        }
        tracing::debug!(store = %self.inner.url, %key, size = stored.size, created = stored.created, "put_stream");
        Ok(PutOutcome {
            sha256: stored.sha256,
            size: stored.size,
            key,
            created: stored.created,
            repaired: stored.repaired,
            pending: None,
        })
    }

    /// [`BlobStore::put_stream`] from an `AsyncRead`.
    pub async fn put_reader<R>(&self, reader: R) -> Result<PutOutcome, StoreError>
    where
        R: AsyncRead + Send,
    {
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, 1 << 20);
        self.put_stream(stream).await
    }

    /// The object's bytes. The content is re-hashed on the way out: a damaged object is an
    /// error ([`StoreError::Corrupt`]), never silently returned.
    pub async fn get(&self, sha: &Sha256) -> Result<Bytes, StoreError> {
        let key = self.key_for(sha);
        let Some(bytes) = self
            .riding_out("get", || self.inner.backend.get(&key))
            .await?
        else {
            return Err(StoreError::NotFound {
                url: self.inner.url.clone(),
                key,
            });
        };
        let actual = digest_bytes(&bytes).await.map_err(|e| self.task_error(e))?;
        if actual != *sha {
            return Err(StoreError::Corrupt {
                url: self.inner.url.clone(),
                key,
                actual,
            });
        }
        Ok(bytes)
    }

    /// The object as a stream of chunks (bounded memory for large objects). The bytes are
    /// hashed as they pass; if they do not match `sha`, the stream's last item is
    /// [`StoreError::Corrupt`], so a consumer that reads to the end never accepts bad data.
    pub async fn get_stream(
        &self,
        sha: &Sha256,
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let key = self.key_for(sha);
        let Some(inner) = self
            .riding_out("get", || self.inner.backend.get_stream(&key))
            .await?
        else {
            return Err(StoreError::NotFound {
                url: self.inner.url.clone(),
                key,
            });
        };
        let check = Check {
            expected: *sha,
            url: self.inner.url.clone(),
            key,
        };
        Ok(verified(inner, check))
    }

    /// The object's size, or `None` when absent.
    pub async fn head(&self, sha: &Sha256) -> Result<Option<u64>, StoreError> {
        let key = self.key_for(sha);
        self.riding_out("head", || self.inner.backend.head(&key))
            .await
    }

    /// [`BlobStore::head`] of many objects, in the order given: the fs store
    /// looks them all up in one blocking task, S3 sends a few HEADs at a time.
    pub async fn heads(&self, shas: &[Sha256]) -> Result<Vec<Option<u64>>, StoreError> {
        let keys: Vec<String> = shas.iter().map(|sha| self.key_for(sha)).collect();
        self.riding_out("head", || self.inner.backend.heads(&keys))
            .await
    }

    /// Re-read and re-hash the object (streaming).
    pub async fn verify(&self, sha: &Sha256) -> Result<Verification, StoreError> {
        let key = self.key_for(sha);
        let hashed = self
            .riding_out("verify", || self.inner.backend.hash_object(&key))
            .await?;
        Ok(match hashed {
            None => Verification::Missing,
            Some(actual) if actual == *sha => Verification::Ok,
            Some(actual) => Verification::Corrupt { actual },
        })
    }

    /// Every object key under this store's prefix (for verification and garbage collection).
    /// Objects whose key does not follow the layout are skipped.
    pub fn list(&self) -> BoxStream<'_, Result<String, StoreError>> {
        self.objects().map(|item| item.map(|o| o.key)).boxed()
    }

    /// Every object under this store's prefix with its digest, size and last modification
    /// (for garbage collection). Objects whose key does not follow the layout are skipped.
    pub fn objects(&self) -> BoxStream<'_, Result<StoredObject, StoreError>> {
        self.objects_in(self.inner.layout.clone())
    }

    fn objects_in(&self, layout: Layout) -> BoxStream<'_, Result<StoredObject, StoreError>> {
        self.inner
            .backend
            .list(layout.objects_prefix())
            .filter_map(move |item| {
                let object = match item {
                    Ok(listed) => layout.parse_key(&listed.key).map(|sha256| {
                        Ok(StoredObject {
                            sha256,
                            key: listed.key,
                            size: listed.size,
                            modified: listed.modified,
                        })
                    }),
                    Err(e) => Some(Err(e)),
                };
                futures::future::ready(object)
            })
            .boxed()
    }

    /// Removes the object for `sha` unless it was modified after `cutoff` (on fs a put of the
    /// same content refreshes its mtime, so an object a writer just relied on is kept). Not
    /// atomic with that check on S3: a caller that must not lose a referenced object decides
    /// with its database first (see `ingest::gc`).
    pub async fn remove_if_unmodified(
        &self,
        sha: &Sha256,
        cutoff: SystemTime,
    ) -> Result<Removal, StoreError> {
        let key = self.inner.layout.key_for(sha);
        self.riding_out("remove", || {
            self.inner.backend.remove_if_unmodified(&key, cutoff)
        })
        .await
    }

    /// Moves the object for `sha` into this prefix's trash (`<prefix>/.trash/sha256/…`) unless
    /// it was modified after `cutoff` (`Kept`). The first phase of a removal: the bytes stay
    /// recoverable ([`BlobStore::restore`]) until [`BlobStore::remove_trashed_if_unmodified`]
    /// deletes them after a second, longer period, counted from the move.
    pub async fn trash_if_unmodified(
        &self,
        sha: &Sha256,
        cutoff: SystemTime,
    ) -> Result<Removal, StoreError> {
        let from = self.inner.layout.key_for(sha);
        let to = self.inner.layout.trash().key_for(sha);
        self.riding_out("move to trash", || {
            self.inner.backend.move_if_unmodified(&from, &to, cutoff)
        })
        .await
    }

    /// Brings the object for `sha` back from the trash; false when the trash has none. The
    /// restored object's modification time is now, so gc's grace period protects it anew.
    pub async fn restore(&self, sha: &Sha256) -> Result<bool, StoreError> {
        let from = self.inner.layout.trash().key_for(sha);
        let to = self.inner.layout.key_for(sha);
        let far = SystemTime::now() + Duration::from_secs(86_400 * 365 * 100);
        let moved = self
            .riding_out("restore from trash", || {
                self.inner.backend.move_if_unmodified(&from, &to, far)
            })
            .await?;
        Ok(moved == Removal::Removed)
    }

    /// Every object in this prefix's trash; `modified` is when it was moved there.
    pub fn trashed(&self) -> BoxStream<'_, Result<StoredObject, StoreError>> {
        self.objects_in(self.inner.layout.trash())
    }

    /// Writes a ledger-head record (small JSON a run leaves after it ends) under
    /// `<prefix>/.ledger-heads/`, content-addressed like an object and durable when this
    /// returns. gc reads them back ([`BlobStore::ledger_heads`]) to prove its database is
    /// not behind the store. Returns the record's digest.
    pub async fn put_ledger_head(&self, bytes: Bytes) -> Result<Sha256, StoreError> {
        let sha = digest_bytes(&bytes).await.map_err(|e| self.task_error(e))?;
        let key = self.inner.layout.ledger_heads().key_for(&sha);
        self.riding_out("put ledger head", || {
            self.inner
                .backend
                .put_bytes(&key, &sha, bytes.clone(), Durability::Immediate)
        })
        .await?;
        Ok(sha)
    }

    /// Every ledger-head record under this prefix.
    pub fn ledger_heads(&self) -> BoxStream<'_, Result<StoredObject, StoreError>> {
        self.objects_in(self.inner.layout.ledger_heads())
    }

    /// The bytes of a ledger-head record, or `None` when it is gone.
    pub async fn get_ledger_head(&self, sha: &Sha256) -> Result<Option<Bytes>, StoreError> {
        let key = self.inner.layout.ledger_heads().key_for(sha);
        self.riding_out("get ledger head", || self.inner.backend.get(&key))
            .await
    }

    /// Deletes a ledger-head record (gc keeps the newest of each mailbox's, and those its
    /// operator has not yet accepted as lost).
    pub async fn remove_ledger_head(&self, sha: &Sha256) -> Result<(), StoreError> {
        let key = self.inner.layout.ledger_heads().key_for(sha);
        let far = SystemTime::now() + Duration::from_secs(86_400 * 365 * 100);
        self.riding_out("remove ledger head", || {
            self.inner.backend.remove_if_unmodified(&key, far)
        })
        .await?;
        Ok(())
    }

    /// Deletes the trashed object for `sha` unless it was moved to the trash after `cutoff`.
    pub async fn remove_trashed_if_unmodified(
        &self,
        sha: &Sha256,
        cutoff: SystemTime,
    ) -> Result<Removal, StoreError> {
        let key = self.inner.layout.trash().key_for(sha);
        self.riding_out("remove from trash", || {
            self.inner.backend.remove_if_unmodified(&key, cutoff)
        })
        .await
    }

    /// Reads the store's clock: the time it gives an object written now, against this host's
    /// clock around the write. fs: the filesystem's mtime (a network filesystem's server
    /// clock); S3: LastModified (whole seconds). gc compares them before it trusts ages.
    pub async fn clock(&self) -> Result<ClockReading, StoreError> {
        let name = format!(
            "{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let key = self.inner.layout.clock_probe_key(&name);
        let before = SystemTime::now();
        let store = self
            .riding_out("read the store's clock", || {
                self.inner.backend.clock_probe(&key)
            })
            .await?;
        Ok(ClockReading {
            store,
            before,
            after: SystemTime::now(),
        })
    }

    /// Writes under this store's prefix that were started before `cutoff` and never finished:
    /// fs staging files of killed writers, S3 multipart uploads never completed or aborted.
    pub async fn abandoned_writes(
        &self,
        cutoff: SystemTime,
    ) -> Result<Vec<AbandonedWrite>, StoreError> {
        let prefix = self.inner.layout.objects_prefix();
        self.riding_out("list unfinished writes", || {
            self.inner.backend.abandoned_writes(&prefix, cutoff)
        })
        .await
    }

    /// Removes an unfinished write listed by [`BlobStore::abandoned_writes`].
    pub async fn discard(&self, write: &AbandonedWrite) -> Result<(), StoreError> {
        self.riding_out("discard unfinished write", || {
            self.inner.backend.discard(write)
        })
        .await
    }

    /// `op` retried through an outage of the store (see [`crate::outage`]).
    async fn riding_out<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        ride_out(&self.inner.url, what, self.inner.outage_budget, op).await
    }

    fn task_error(&self, e: tokio::task::JoinError) -> StoreError {
        StoreError::Task {
            url: self.inner.url.clone(),
            message: e.to_string(),
        }
    }
}

struct Check {
    expected: Sha256,
    url: String,
    key: String,
}

/// Pass `inner` through, hashing; append a `Corrupt` error if the digest does not match.
fn verified(inner: OutputStream, check: Check) -> BoxStream<'static, Result<Bytes, StoreError>> {
    let state = Some((inner, Hasher::default(), check));
    futures::stream::unfold(state, |state| async move {
        let (mut inner, mut hasher, check) = state?;
        match inner.next().await {
            Some(Ok(chunk)) => {
                hasher.update(&chunk);
                Some((Ok(chunk), Some((inner, hasher, check))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None => {
                let (actual, _) = hasher.finish();
                (actual != check.expected).then(|| {
                    let err = StoreError::Corrupt {
                        url: check.url,
                        key: check.key,
                        actual,
                    };
                    (Err(err), None)
                })
            }
        }
    })
    .boxed()
}
