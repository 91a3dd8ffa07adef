//! Staging files and durable directories for the fs backend. A `Staging` guard removes its
//! file when dropped, so every exit path (error, panic, cancellation, success after linking)
//! leaves no staging file behind.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Ctx;
use super::flush::Flush;
use crate::error::StoreError;

/// Prefix of staging file names; `.` keeps them out of listings and away from valid keys.
pub(crate) const STAGING_PREFIX: &str = ".staging-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Staging {
    path: PathBuf,
}

impl Staging {
    /// Create a new, uniquely named staging file in `dir` (O_EXCL: never reuses a name,
    /// even across processes).
    pub(crate) fn create(ctx: &Ctx, dir: &Path) -> Result<(Self, File), StoreError> {
        let mut attempt = 0;
        loop {
            let name = format!(
                "{STAGING_PREFIX}{}-{}-{:016x}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                rand::random::<u64>()
            );
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((Self { path }, file)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 3 => attempt += 1,
                Err(e) => return Err(ctx.io("create staging file", &path, e)),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove staging file");
        }
    }
}

/// fsync a directory so entries created or removed in it survive a crash.
pub(crate) fn fsync_dir(ctx: &Ctx, dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ctx.io("fsync directory", dir, e))
}

/// Create `dir` and any missing ancestors, fsyncing each new directory's parent so the new
/// entries are durable (`deferred`: recording it there instead). Concurrent creators are fine
/// (EEXIST is success).
pub(crate) fn ensure_dir(
    ctx: &Ctx,
    dir: &Path,
    deferred: Option<&Flush>,
) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {
                if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
                    match deferred {
                        Some(flush) => flush.record(parent),
                        None => fsync_dir(ctx, parent)?,
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(ctx.io("create directory", d, e)),
        }
    }
    Ok(())
}
