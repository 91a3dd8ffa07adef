//! Filesystem backend: objects are files at `<root>/<key>`. Writes go to a uniquely named
//! staging file in the destination directory, are fsynced, and are hard-linked into place;
//! `link(2)` fails with EEXIST when the object exists, which makes the put-if-absent atomic
//! across tasks and processes without clobbering and without torn files. Deferred puts skip
//! the fsyncs and leave them to one `sync` (flush.rs). A damaged existing object is replaced
//! by the next put of its content (put.rs); staging files of dead writers are swept after a
//! grace period (staging.rs).

mod flush;
mod gc;
mod put;
mod read;
mod staging;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::backend::{Backend, Durability, InputStream, Listed, OutputStream, Placed, Stored};
use crate::error::StoreError;
use crate::gc::{AbandonedWrite, Removal};
use crate::layout::Layout;
use crate::sha::Sha256;

pub(crate) struct FsBackend {
    ctx: Ctx,
    flush: Arc<flush::Flush>,
}

/// What every blocking helper needs: the root and the URL to name in errors.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub url: String,
    pub root: PathBuf,
    /// Removes staging files of dead writers (shared by every clone).
    pub sweeper: Arc<staging::Sweeper>,
}

impl Ctx {
    pub(crate) fn io(&self, op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            url: self.url.clone(),
            op,
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn path_for(&self, key: &str) -> PathBuf {
        // Keys are validated by `Layout` (no `..`, no leading `/`), so joining is safe.
        self.root.join(key)
    }

    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StoreError::Task {
                url: self.url.clone(),
                message: e.to_string(),
            })?
    }
}

impl FsBackend {
    /// Open (creating the root directory if needed).
    pub(crate) async fn open(url: String, root: PathBuf) -> Result<Self, StoreError> {
        let ctx = Ctx {
            url,
            root,
            sweeper: Arc::default(),
        };
        let probe = ctx.clone();
        let flush = ctx
            .blocking(move || {
                std::fs::create_dir_all(&probe.root)
                    .map_err(|e| probe.io("create store directory", &probe.root, e))?;
                flush::Flush::open(&probe)
            })
            .await?;
        Ok(Self {
            ctx,
            flush: Arc::new(flush),
        })
    }
}

#[async_trait]
impl Backend for FsBackend {
    async fn put_bytes(
        &self,
        key: &str,
        _sha: &Sha256,
        bytes: Bytes,
        durability: Durability,
    ) -> Result<Placed, StoreError> {
        let ctx = self.ctx.clone();
        let key = key.to_owned();
        let flush = Arc::clone(&self.flush);
        self.ctx
            .blocking(move || {
                let deferred = (durability == Durability::Deferred).then_some(&*flush);
                put::put_bytes(&ctx, &key, &bytes, deferred)
            })
            .await
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let ctx = self.ctx.clone();
        let flush = Arc::clone(&self.flush);
        self.ctx.blocking(move || flush.sync(&ctx)).await
    }

    async fn put_stream(
        &self,
        layout: &Layout,
        input: InputStream<'_>,
    ) -> Result<Stored, StoreError> {
        put::put_stream(&self.ctx, layout, input).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        read::get(&self.ctx, key).await
    }

    async fn get_stream(&self, key: &str) -> Result<Option<OutputStream>, StoreError> {
        read::get_stream(&self.ctx, key).await
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let ctx = self.ctx.clone();
        let key = key.to_owned();
        self.ctx.blocking(move || read::stat(&ctx, &key)).await
    }

    /// One blocking task for all: a batch of lookups pays one thread hand-off.
    async fn heads(&self, keys: &[String]) -> Result<Vec<Option<u64>>, StoreError> {
        let ctx = self.ctx.clone();
        let keys = keys.to_vec();
        self.ctx
            .blocking(move || keys.iter().map(|key| read::stat(&ctx, key)).collect())
            .await
    }

    async fn hash_object(&self, key: &str) -> Result<Option<Sha256>, StoreError> {
        let ctx = self.ctx.clone();
        let key = key.to_owned();
        self.ctx.blocking(move || read::hash_file(&ctx, &key)).await
    }

    async fn preflight(&self, _probe: &str, write: bool) -> Result<(), StoreError> {
        if !write {
            // The root exists: open created it.
            return Ok(());
        }
        let ctx = self.ctx.clone();
        self.ctx
            .blocking(move || {
                // Removed on drop; a killed process leaves a `.tmp` name that is not an object.
                tempfile::Builder::new()
                    .prefix(".preflight-")
                    .tempfile_in(&ctx.root)
                    .map(drop)
                    .map_err(|e| ctx.io("write a test file in", &ctx.root, e))
            })
            .await
    }

    fn list(&self, objects_prefix: String) -> BoxStream<'static, Result<Listed, StoreError>> {
        read::list(self.ctx.clone(), objects_prefix)
    }

    async fn remove_if_unmodified(
        &self,
        key: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Removal, StoreError> {
        let ctx = self.ctx.clone();
        let key = key.to_owned();
        self.ctx
            .blocking(move || gc::remove_if_unmodified(&ctx, &key, cutoff))
            .await
    }

    async fn move_if_unmodified(
        &self,
        from: &str,
        to: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Removal, StoreError> {
        let ctx = self.ctx.clone();
        let (from, to) = (from.to_owned(), to.to_owned());
        self.ctx
            .blocking(move || gc::move_if_unmodified(&ctx, &from, &to, cutoff))
            .await
    }

    async fn clock_probe(&self, key: &str) -> Result<std::time::SystemTime, StoreError> {
        let ctx = self.ctx.clone();
        let key = key.to_owned();
        self.ctx.blocking(move || gc::clock_probe(&ctx, &key)).await
    }

    async fn abandoned_writes(
        &self,
        objects_prefix: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<Vec<AbandonedWrite>, StoreError> {
        let ctx = self.ctx.clone();
        let prefix = objects_prefix.to_owned();
        self.ctx
            .blocking(move || gc::abandoned_writes(&ctx, &prefix, cutoff))
            .await
    }

    async fn discard(&self, write: &AbandonedWrite) -> Result<(), StoreError> {
        let ctx = self.ctx.clone();
        let write = write.clone();
        self.ctx.blocking(move || gc::discard(&ctx, &write)).await
    }
}
