//! Deferred durability for the fs backend. A deferred put writes and links its file but skips
//! the three fsyncs an immediate put pays (file, directory, new parent directories); `Flush`
//! remembers that something is unflushed and `sync` makes all of it durable at once.
//!
//! Why: on a VM disk each fsync is a device cache flush, and for mail-sized blobs the fsyncs
//! cost more than writing the blob (benches/put_throughput.rs: 50 KB blobs, durable one by
//! one vs deferred with one sync per 64, about twice the rate). On Linux one `syncfs(2)` of
//! the store's filesystem covers every file and directory written before it started, however
//! many. Elsewhere the touched paths are remembered and fsynced one by one at `sync`.
//!
//! After a failed `syncfs` the store root is opened again: Linux reports a writeback error
//! once per open file description (it samples the filesystem's error sequence at open and
//! advances the description's copy when it reports), so a retry through the same
//! descriptor would report success for the very pages whose writeback failed. The fresh
//! descriptor, opened right after the failure, reports every error from then on. What the
//! failed sync covered stays owed (never reported durable by it); note that a page whose
//! writeback failed may have been marked clean by the kernel, so a later successful sync
//! does not prove that page reached the disk: callers should treat a failed sync as a
//! failed batch and put its blobs again (a put re-checks an existing object and repairs it).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
#[cfg(test)]
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Ctx;
use crate::error::StoreError;

/// The fs backend's unflushed writes.
pub(crate) struct Flush {
    /// Held open so `syncfs` reports writeback errors that happened since the last call
    /// (Linux samples the filesystem's error sequence when a file is opened).
    /// Replaced by a fresh descriptor after a failed `syncfs` (see the module docs).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    root: Mutex<File>,
    /// Files and directories written without fsync, for the portable `sync`. On Linux only
    /// the fact that there are some matters, so no paths are kept (a caller that never
    /// syncs must not grow this without bound).
    unflushed: Mutex<Unflushed>,
    /// One sync at a time. Without it a second sync could find nothing recorded while the
    /// first is still flushing the puts it took, and report them durable too early.
    syncing: Mutex<()>,
    /// Test hook: the next flush fails as a writeback error would.
    #[cfg(test)]
    fail_next: AtomicBool,
    /// Test observation: how many times the root was reopened.
    #[cfg(test)]
    reopened: AtomicU64,
}

#[derive(Default)]
struct Unflushed {
    any: bool,
    paths: Vec<PathBuf>,
}

impl Flush {
    /// Blocking: open the store root (which must exist).
    pub(crate) fn open(ctx: &Ctx) -> Result<Self, StoreError> {
        let root =
            File::open(&ctx.root).map_err(|e| ctx.io("open store directory", &ctx.root, e))?;
        Ok(Self {
            root: Mutex::new(root),
            unflushed: Mutex::default(),
            syncing: Mutex::new(()),
            #[cfg(test)]
            fail_next: AtomicBool::new(false),
            #[cfg(test)]
            reopened: AtomicU64::new(0),
        })
    }

    /// Record that `path` (a file, or a directory whose entries changed) was written without
    /// an fsync.
    pub(crate) fn record(&self, path: &Path) {
        let mut u = self.unflushed.lock().unwrap_or_else(|p| p.into_inner());
        u.any = true;
        if KEEP_PATHS {
            u.paths.push(path.to_owned());
        }
    }

    /// Record an object written (or found) without an fsync: the file, and every directory
    /// from its own up to the root, since another writer (another process, even) may have
    /// created one of them and not flushed it yet.
    pub(crate) fn record_object(&self, ctx: &Ctx, object: &Path) {
        self.record(object);
        if KEEP_PATHS {
            for dir in directories_up_to_root(object, &ctx.root) {
                self.record(dir);
            }
        }
    }

    /// Blocking: make every write recorded before this call durable.
    pub(crate) fn sync(&self, ctx: &Ctx) -> Result<(), StoreError> {
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        // Taken before flushing: a put recorded after this point may not be covered and stays
        // for the next sync.
        let taken = {
            let mut u = self.unflushed.lock().unwrap_or_else(|p| p.into_inner());
            if !u.any {
                return Ok(());
            }
            std::mem::take(&mut *u)
        };
        let result = self.flush(ctx, &taken.paths);
        if result.is_err() {
            // Nothing is known to be durable: keep it owed, so a retry flushes again.
            let mut u = self.unflushed.lock().unwrap_or_else(|p| p.into_inner());
            u.any = true;
            u.paths.extend(taken.paths);
        }
        result
    }

    fn flush(&self, ctx: &Ctx, paths: &[PathBuf]) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.fail_next.swap(false, Ordering::AcqRel) {
            self.reopen_root(ctx);
            return Err(ctx.io(
                "syncfs store filesystem",
                &ctx.root,
                std::io::Error::from_raw_os_error(5), // EIO
            ));
        }
        #[cfg(target_os = "linux")]
        {
            let _ = paths;
            let result = {
                let root = self.root.lock().unwrap_or_else(|p| p.into_inner());
                rustix::fs::syncfs(&*root)
            };
            result.map_err(|e| {
                self.reopen_root(ctx);
                ctx.io("syncfs store filesystem", &ctx.root, e.into())
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            fsync_each(ctx, paths)
        }
    }

    /// After a failed `syncfs`: replace the root descriptor by a fresh one, so the retry
    /// does not report success merely because this descriptor already reported the error.
    /// If the root cannot be opened the old descriptor stays and the error is logged (the
    /// next failure tries again).
    #[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
    fn reopen_root(&self, ctx: &Ctx) {
        match File::open(&ctx.root) {
            Ok(fresh) => {
                // Opened before the old one is closed, so the new descriptor is distinct.
                let old = std::mem::replace(
                    &mut *self.root.lock().unwrap_or_else(|p| p.into_inner()),
                    fresh,
                );
                drop(old);
                #[cfg(test)]
                self.reopened.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => {
                tracing::warn!(root = %ctx.root.display(), error = %e, "could not reopen the store root after a failed sync");
            }
        }
    }
}

/// Paths are kept only where `sync` fsyncs them one by one.
const KEEP_PATHS: bool = !cfg!(target_os = "linux");

/// The directories holding `object`, innermost first, up to and including `root`.
fn directories_up_to_root<'a>(object: &'a Path, root: &'a Path) -> impl Iterator<Item = &'a Path> {
    let mut reached_root = false;
    object.ancestors().skip(1).take_while(move |dir| {
        let take = !reached_root && dir.starts_with(root);
        reached_root = *dir == root;
        take
    })
}

/// fsync every path once (files first, then directories, so a directory is flushed after
/// the files whose entries it holds).
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) fn fsync_each(ctx: &Ctx, paths: &[PathBuf]) -> Result<(), StoreError> {
    let mut paths: Vec<&PathBuf> = paths.iter().collect();
    paths.sort();
    paths.dedup();
    let (dirs, files): (Vec<&PathBuf>, Vec<&PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
    for p in files.into_iter().chain(dirs) {
        File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| ctx.io("fsync", p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(root: &Path) -> Ctx {
        Ctx {
            url: root.display().to_string(),
            root: root.to_owned(),
            sweeper: Default::default(),
        }
    }

    #[test]
    fn a_failed_sync_reopens_the_root_and_stays_owed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = ctx(dir.path());
        let flush = Flush::open(&ctx).expect("open");
        let before = root_identity(&flush);
        flush.record(dir.path());
        flush.fail_next.store(true, Ordering::Release);
        let err = flush.sync(&ctx).expect_err("injected writeback error");
        assert!(err.to_string().contains("syncfs"), "{err}");
        assert_eq!(flush.reopened.load(Ordering::Acquire), 1);
        assert_ne!(
            root_identity(&flush),
            before,
            "the retry uses a fresh descriptor"
        );
        assert!(
            flush.unflushed.lock().expect("lock").any,
            "what the failed sync covered is still owed"
        );
        flush
            .sync(&ctx)
            .expect("retry through the fresh descriptor");
        assert!(!flush.unflushed.lock().expect("lock").any);
        assert_eq!(
            flush.reopened.load(Ordering::Acquire),
            1,
            "success: no reopen"
        );
    }

    /// The descriptor number of the root (distinct for a fresh descriptor, since the new one
    /// is opened while the old one is still open).
    #[cfg(unix)]
    fn root_identity(flush: &Flush) -> i32 {
        use std::os::fd::AsRawFd;
        flush.root.lock().expect("lock").as_raw_fd()
    }

    #[cfg(not(unix))]
    fn root_identity(flush: &Flush) -> u64 {
        flush.reopened.load(Ordering::Acquire)
    }

    #[test]
    fn sync_with_nothing_recorded_does_nothing_and_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = ctx(dir.path());
        let flush = Flush::open(&ctx).expect("open");
        flush.sync(&ctx).expect("empty sync");
        let file = dir.path().join("a");
        std::fs::write(&file, b"x").expect("write");
        flush.record(&file);
        flush.record(dir.path());
        flush.sync(&ctx).expect("sync");
        assert!(
            !flush.unflushed.lock().expect("lock").any,
            "sync clears what it flushed"
        );

        // The portable path fsyncs each file and directory, and names a path it cannot open.
        fsync_each(&ctx, &[file.clone(), dir.path().to_owned(), file.clone()]).expect("fsync");
        let object = dir.path().join("org/sha256/ab/cd/abcd");
        let dirs: Vec<&Path> = directories_up_to_root(&object, dir.path()).collect();
        let want: Vec<PathBuf> = ["org/sha256/ab/cd", "org/sha256/ab", "org/sha256", "org", ""]
            .iter()
            .map(|d| dir.path().join(d))
            .collect();
        assert_eq!(dirs, want.iter().map(PathBuf::as_path).collect::<Vec<_>>());
        let gone = dir.path().join("gone");
        let err = fsync_each(&ctx, &[gone]).expect_err("missing path");
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
