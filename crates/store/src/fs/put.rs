//! fs put paths: `put_bytes` (digest known, staging file in the final directory) and
//! `put_stream` (digest learnt while writing, staging file in the `sha256/` directory of the
//! prefix, same filesystem, then linked into its final directory).
//!
//! A put that finds its content already stored refreshes the object's mtime (`refresh`): garbage
//! collection keeps objects modified within its grace period, so one a writer just relied on
//! is never collected as an orphan before the writer's rows reference it.
//!
//! Self-repair: an existing object is checked before it counts as a dedup hit (`put_bytes`
//! compares it with the bytes in hand, `put_stream` re-hashes it; a size difference alone
//! proves damage without a read). A damaged one is replaced by renaming the complete staging
//! file over it: atomic, so readers see the damaged or the correct bytes, never a mix, and
//! concurrent repairers all rename identical bytes. Durability is a new object's: the
//! staging file is fsynced (or recorded, deferred) before the rename, the directory after.

use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::Ctx;
use super::flush::Flush;
use super::read::hash_file;
use super::staging::{Staging, fsync_dir, prepare_dir};
use crate::backend::{InputStream, Placed, Stored};
use crate::error::StoreError;
use crate::layout::Layout;
use crate::sha::{Hasher, Sha256};

/// What an existing object must contain to count as intact.
enum Expected<'a> {
    /// The bytes being stored (compared directly: cheaper than hashing).
    Bytes(&'a [u8]),
    /// The digest and size of the staged stream.
    Digest(&'a Sha256, u64),
}

/// Blocking: store `bytes` under `key` unless present and intact (a damaged object is
/// replaced). `deferred`: skip every fsync and record what needs one in `Flush` instead.
pub(super) fn put_bytes(
    ctx: &Ctx,
    key: &str,
    bytes: &[u8],
    deferred: Option<&Flush>,
) -> Result<Placed, StoreError> {
    let target = ctx.path_for(key);
    let expected = Expected::Bytes(bytes);
    // Fast path: already stored and intact, so re-runs write nothing. A deferred put still
    // owes a flush: the object may be another writer's, not yet durable.
    let damaged = match existing_size(ctx, &target)? {
        None => false,
        Some(_) if intact(ctx, key, &expected)? && refresh(&target) => {
            if let Some(flush) = deferred {
                flush.record_object(ctx, &target);
            }
            return Ok(Placed::default());
        }
        // Gone since the check (garbage collection removed it): written anew below.
        Some(_) if !target.exists() => false,
        Some(_) => true,
    };
    let dir = parent(&target);
    prepare_dir(ctx, dir, deferred)?;
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
    place(ctx, staging, key, &expected, damaged, deferred)
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
            prepare_dir(&ctx2, &dir, None)?;
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
    let placed = ctx
        .blocking(move || {
            let dir = parent(&ctx2.path_for(&key)).to_owned();
            prepare_dir(&ctx2, &dir, None)?;
            place(
                &ctx2,
                staging,
                &key,
                &Expected::Digest(&sha256, size),
                false,
                None,
            )
        })
        .await?;
    Ok(Stored {
        sha256,
        size,
        created: placed.created,
        repaired: placed.repaired,
    })
}

/// Put the complete (fsynced unless deferred) staging file in place as `key`: hard-link it
/// (EEXIST: another writer won the race, or the object was there: success with
/// `created = false` if that object is intact), or, when the object is known to be damaged,
/// rename it over the object.
fn place(
    ctx: &Ctx,
    staging: Staging,
    key: &str,
    expected: &Expected<'_>,
    damaged: bool,
    deferred: Option<&Flush>,
) -> Result<Placed, StoreError> {
    let target = ctx.path_for(key);
    let dir = parent(&target);
    if !damaged {
        match std::fs::hard_link(staging.path(), &target) {
            Ok(()) => {
                // Remove the staging name before the directory fsync so one fsync makes both
                // the new entry and the removal durable.
                drop(staging);
                match deferred {
                    Some(flush) => flush.record(dir),
                    None => fsync_dir(ctx, dir)?,
                }
                return Ok(Placed {
                    created: true,
                    repaired: false,
                });
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if intact(ctx, key, expected)? && refresh(&target) {
                    drop(staging);
                    return Ok(Placed::default());
                }
                if !target.exists() {
                    // Removed between the link and the check: link again.
                    return place(ctx, staging, key, expected, false, deferred);
                }
            }
            Err(e) => return Err(ctx.io("link object into place", &target, e)),
        }
    }
    std::fs::rename(staging.path(), &target)
        .map_err(|e| ctx.io("replace damaged object", &target, e))?;
    drop(staging); // its name is gone; the guard finds nothing to remove
    match deferred {
        Some(flush) => flush.record(dir),
        None => fsync_dir(ctx, dir)?,
    }
    Ok(Placed {
        created: false,
        repaired: true,
    })
}

/// Blocking: whether the object at `key` holds exactly the expected content. A missing
/// object (removed meanwhile) is not intact: the caller then puts it back.
fn intact(ctx: &Ctx, key: &str, expected: &Expected<'_>) -> Result<bool, StoreError> {
    let path = ctx.path_for(key);
    match expected {
        Expected::Digest(sha, size) => {
            if existing_size(ctx, &path)? != Some(*size) {
                return Ok(false);
            }
            Ok(hash_file(ctx, key)?.as_ref() == Some(*sha))
        }
        Expected::Bytes(bytes) => {
            let mut file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(ctx.io("open object", &path, e)),
            };
            let len = file
                .metadata()
                .map_err(|e| ctx.io("stat object", &path, e))?
                .len();
            if len != bytes.len() as u64 {
                return Ok(false);
            }
            let mut buf = vec![0u8; bytes.len().clamp(1, 1 << 20)];
            let mut rest = *bytes;
            loop {
                match file.read(&mut buf) {
                    // The file ended early (truncated meanwhile) or has exactly our bytes.
                    Ok(0) => return Ok(rest.is_empty()),
                    Ok(n) if n > rest.len() || buf[..n] != rest[..n] => return Ok(false),
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(ctx.io("read object", &path, e)),
                }
            }
        }
    }
}

/// Blocking: marks an object a put found as just used (its mtime becomes now), so garbage
/// collection, which removes only objects unmodified for its grace period, keeps it. False
/// when the object is gone (removed meanwhile): the caller then writes it anew. Any other
/// failure (a read-only store) keeps the dedup hit: the database protocol of `ingest::gc`
/// still catches a removal.
fn refresh(path: &Path) -> bool {
    match touch(path) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "could not refresh an object's mtime");
            true
        }
    }
}

/// Sets the file's mtime to now. On Linux through `utimensat(UTIME_NOW)`, which needs only
/// write permission on the file, not its ownership (an explicit time would), so a store
/// written by several users still refreshes.
#[cfg(target_os = "linux")]
pub(super) fn touch(path: &Path) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT, utimensat};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
    };
    utimensat(CWD, path, &times, AtFlags::empty()).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
}

fn existing_size(ctx: &Ctx, path: &Path) -> Result<Option<u64>, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ctx.io("stat object", path, e)),
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}
