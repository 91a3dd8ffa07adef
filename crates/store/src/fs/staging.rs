//! Staging files and durable directories for the fs backend. A `Staging` guard removes its
//! file when dropped, so every exit path (error, panic, cancellation, success after linking)
//! leaves no staging file behind.
//!
//! A killed writer (or a power loss) still can; `Sweeper` removes such leftovers: the first
//! time this store writes into a directory (a put's object directory, or the `sha256/`
//! directory where `put_stream` stages), it lists that directory once and removes staging
//! files whose modification time is more than [`STAGING_GRACE`] old. A live writer's staging
//! file is younger (its mtime moves with every write; a stream stalled for an hour loses
//! its put, which fails cleanly). Cost: one directory listing per directory per store
//! instance, which is bounded by the directories it writes to; leftovers in a directory
//! this instance already swept wait for the next instance (the next process).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::Ctx;
use super::flush::Flush;
use crate::error::StoreError;

/// Prefix of staging file names; `.` keeps them out of listings and away from valid keys.
pub(crate) const STAGING_PREFIX: &str = ".staging-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Staging files older than this are a dead writer's and are removed by the next writer.
pub(crate) const STAGING_GRACE: Duration = Duration::from_secs(3600);

/// Directories remembered as swept before the memory is reset (8 bytes each; after a reset
/// directories are swept again, which costs time, not correctness).
const MAX_SWEPT: usize = 1 << 18;

/// Sweeps each directory a store writes to once (see the module docs).
#[derive(Default)]
pub(crate) struct Sweeper {
    /// Hashes of the directories already swept (a collision only skips a sweep).
    swept: Mutex<HashSet<u64>>,
    hasher: RandomState,
}

impl Sweeper {
    /// Blocking: unless already done by this store, remove stale staging files from `dir`.
    /// Best effort: failures are logged, never returned (a put does not fail over garbage).
    pub(crate) fn sweep(&self, dir: &Path) {
        let id = self.hasher.hash_one(dir);
        {
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            if swept.contains(&id) {
                return;
            }
            if swept.len() >= MAX_SWEPT {
                swept.clear();
            }
            swept.insert(id);
        }
        sweep_dir(dir, SystemTime::now());
    }

    /// `dir` was just created by this store: nothing in it predates this
    /// instance, so it counts as swept without a listing (a fresh store
    /// creates most of its object directories this way).
    pub(crate) fn created(&self, dir: &Path) {
        let id = self.hasher.hash_one(dir);
        let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
        if swept.len() >= MAX_SWEPT {
            swept.clear();
        }
        swept.insert(id);
    }
}

/// Blocking: `dir` exists (made durable as `ensure_dir` says) and has been
/// swept of a dead writer's staging files, ready for a staging file.
pub(crate) fn prepare_dir(
    ctx: &Ctx,
    dir: &Path,
    deferred: Option<&Flush>,
) -> Result<(), StoreError> {
    if ensure_dir(ctx, dir, deferred)? {
        ctx.sweeper.created(dir);
    } else {
        ctx.sweeper.sweep(dir);
    }
    Ok(())
}

/// Remove staging files in `dir` last modified more than [`STAGING_GRACE`] before `now`.
fn sweep_dir(dir: &Path, now: SystemTime) {
    let entries = match std::fs::read_dir(dir) {
        Ok(it) => it,
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "staging sweep: cannot list");
            return;
        }
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(STAGING_PREFIX))
        {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let stale = meta.is_file()
            && meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > STAGING_GRACE);
        if !stale {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed a stale staging file"),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not remove stale staging file")
            }
        }
    }
}

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
/// Returns whether this call created `dir` itself.
pub(crate) fn ensure_dir(
    ctx: &Ctx,
    dir: &Path,
    deferred: Option<&Flush>,
) -> Result<bool, StoreError> {
    if dir.is_dir() {
        return Ok(false);
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
    let mut created = false;
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {
                created = d == dir;
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
    Ok(created)
}
