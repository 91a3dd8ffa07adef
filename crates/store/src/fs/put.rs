//! fs put paths: `put_bytes` (digest known, staging file in the final directory) and
//! `put_stream` (digest learnt while writing, staging file in the `sha256/` directory of the
//! prefix, same filesystem, then linked into its final directory).

use std::io::{ErrorKind, Write};
use std::path::Path;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::Ctx;
use super::flush::Flush;
use super::staging::{Staging, ensure_dir, fsync_dir};
use crate::backend::{InputStream, Stored};
use crate::error::StoreError;
use crate::layout::Layout;
use crate::sha::Hasher;

/// Blocking: store `bytes` under `key` unless present. Returns whether this call created it.
/// `deferred`: skip every fsync and record what needs one in `Flush` instead.
pub(super) fn put_bytes(
    ctx: &Ctx,
    key: &str,
    bytes: &[u8],
    deferred: Option<&Flush>,
) -> Result<bool, StoreError> {
    let target = ctx.path_for(key);
    let size = bytes.len() as u64;
    // Fast path: already stored, so re-runs write nothing. A deferred put still owes a flush:
    // the object may be another writer's, not yet durable.
    if let Some(existing) = existing_size(ctx, &target)? {
        if let Some(flush) = deferred {
            flush.record_object(ctx, &target);
        }
        return check_size(ctx, key, size, existing).map(|()| false);
    }
    let dir = parent(&target);
    ensure_dir(ctx, dir, deferred)?;
    let (staging, mut file) = Staging::create(ctx, dir)?;
    file.write_all(bytes)
        .and_then(|()| match deferred {
            Some(_) => Ok(()),
            None => file.sync_all(),
        })
        .map_err(|e| ctx.io("write staging file", staging.path(), e))?;
    drop(file);
    if let Some(flush) = deferred {
        flush.record_object(ctx, &target);
    }
    place(ctx, staging, key, size, deferred)
}

/// Store a stream; the staging file lives in `<root>/<prefix>/sha256/` until the digest is known.
pub(super) async fn put_stream(
    ctx: &Ctx,
    layout: &Layout,
    mut input: InputStream<'_>,
) -> Result<Stored, StoreError> {
    let staging_dir = ctx.path_for(&layout.objects_prefix());
    let (staging, file) = {
        let ctx2 = ctx.clone();
        let dir = staging_dir.clone();
        ctx.blocking(move || {
            ensure_dir(&ctx2, &dir, None)?;
            Staging::create(&ctx2, &dir)
        })
        .await?
    };
    let mut file = tokio::fs::File::from_std(file);
    let mut hasher = Hasher::default();
    while let Some(chunk) = input.next().await {
        let chunk = chunk.map_err(|source| StoreError::Input {
            url: ctx.url.clone(),
            source,
        })?;
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| ctx.io("write staging file", staging.path(), e))?;
    }
    file.sync_all()
        .await
        .map_err(|e| ctx.io("fsync staging file", staging.path(), e))?;
    drop(file);
    let (sha256, size) = hasher.finish();
    let key = layout.key_for(&sha256);
    let ctx2 = ctx.clone();
    let created = ctx
        .blocking(move || {
            ensure_dir(&ctx2, parent(&ctx2.path_for(&key)), None)?;
            place(&ctx2, staging, &key, size, None)
        })
        .await?;
    Ok(Stored {
        sha256,
        size,
        created,
    })
}

/// Hard-link the complete, fsynced staging file to `key`. EEXIST means another writer won the
/// race (or the object was there): success with `created = false` after a size check.
fn place(
    ctx: &Ctx,
    staging: Staging,
    key: &str,
    size: u64,
    deferred: Option<&Flush>,
) -> Result<bool, StoreError> {
    let target = ctx.path_for(key);
    let dir = parent(&target);
    match std::fs::hard_link(staging.path(), &target) {
        Ok(()) => {
            // Remove the staging name before the directory fsync so one fsync makes both
            // the new entry and the removal durable.
            drop(staging);
            match deferred {
                Some(flush) => flush.record(dir),
                None => fsync_dir(ctx, dir)?,
            }
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            drop(staging);
            let existing = existing_size(ctx, &target)?.unwrap_or(size);
            check_size(ctx, key, size, existing).map(|()| false)
        }
        Err(e) => Err(ctx.io("link object into place", &target, e)),
    }
}

fn existing_size(ctx: &Ctx, path: &Path) -> Result<Option<u64>, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ctx.io("stat object", path, e)),
    }
}

fn check_size(ctx: &Ctx, key: &str, expected: u64, actual: u64) -> Result<(), StoreError> {
    if expected == actual {
        Ok(())
    } else {
        Err(StoreError::SizeMismatch {
            url: ctx.url.clone(),
            key: key.to_owned(),
            expected,
            actual,
        })
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}
