//! fs garbage-collection primitives: remove an object unless its mtime moved past a cutoff
//! (a put that found the object refreshes it: put.rs), and list and remove staging files that
//! killed writers left behind anywhere under the objects prefix (the put path sweeps only
//! the directories it writes to).

use std::io::ErrorKind;
use std::path::Path;
use std::time::SystemTime;

use super::Ctx;
use super::put::touch;
use super::read::{is_hex_pair, sorted_names};
use super::staging::{STAGING_PREFIX, fsync_dir};
use crate::error::StoreError;
use crate::gc::{AbandonedKind, AbandonedWrite, Removal};

/// Blocking. The mtime check and the unlink are two steps: a put that refreshes the object in
/// between loses it, and the caller's database protocol catches that (see `ingest::gc`).
pub(super) fn remove_if_unmodified(
    ctx: &Ctx,
    key: &str,
    cutoff: SystemTime,
) -> Result<Removal, StoreError> {
    let path = ctx.path_for(key);
    if let Some(kept_or_absent) = unless_unmodified(ctx, &path, cutoff)? {
        return Ok(kept_or_absent);
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Removal::Absent),
        Err(e) => return Err(ctx.io("remove object", &path, e)),
    }
    if let Some(dir) = path.parent() {
        fsync_dir(ctx, dir)?;
    }
    Ok(Removal::Removed)
}

/// Blocking. `Some(Absent)` when there is no object at `path`, `Some(Kept)`
/// when it was modified after `cutoff`; `None` when it may go. An unknown
/// mtime counts as now (the object looks young).
fn unless_unmodified(
    ctx: &Ctx,
    path: &Path,
    cutoff: SystemTime,
) -> Result<Option<Removal>, StoreError> {
    let modified = match std::fs::metadata(path) {
        Ok(meta) => meta.modified().unwrap_or_else(|_| SystemTime::now()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Some(Removal::Absent)),
        Err(e) => return Err(ctx.io("stat object", path, e)),
    };
    Ok((modified > cutoff).then_some(Removal::Kept))
}

/// Blocking: see `Backend::move_if_unmodified`. The mtime is set to now *before* the
/// rename: a crash between the two leaves the object where it was, merely younger (kept
/// longer), never a trashed object that looks old enough to delete.
pub(super) fn move_if_unmodified(
    ctx: &Ctx,
    from: &str,
    to: &str,
    cutoff: SystemTime,
) -> Result<Removal, StoreError> {
    let source = ctx.path_for(from);
    let target = ctx.path_for(to);
    if let Some(kept_or_absent) = unless_unmodified(ctx, &source, cutoff)? {
        return Ok(kept_or_absent);
    }
    match touch(&source) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Removal::Absent),
        Err(e) => return Err(ctx.io("set the time of", &source, e)),
    }
    let target_dir = target.parent().unwrap_or(&ctx.root).to_path_buf();
    std::fs::create_dir_all(&target_dir).map_err(|e| ctx.io("create directory", &target_dir, e))?;
    match std::fs::rename(&source, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Removal::Absent),
        Err(e) => return Err(ctx.io("move object", &source, e)),
    }
    fsync_dir(ctx, &target_dir)?;
    if let Some(dir) = source.parent() {
        fsync_dir(ctx, dir)?;
    }
    Ok(Removal::Removed)
}

/// Blocking: the filesystem's time for a file created now (on a network filesystem, the
/// server's clock), read from a probe file that is removed at once.
pub(super) fn clock_probe(ctx: &Ctx, key: &str) -> Result<SystemTime, StoreError> {
    let path = ctx.path_for(key);
    let dir = path.parent().unwrap_or(&ctx.root).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| ctx.io("create directory", &dir, e))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| ctx.io("create clock probe", &path, e))?;
    let modified = file.metadata().and_then(|m| m.modified());
    drop(file);
    let removed = std::fs::remove_file(&path);
    let modified = modified.map_err(|e| ctx.io("stat clock probe", &path, e))?;
    removed.map_err(|e| ctx.io("remove clock probe", &path, e))?;
    Ok(modified)
}

/// Blocking: staging files older than `cutoff` in `<prefix>` (where streams stage) and in
/// its two levels of fan-out directories (where byte puts stage).
pub(super) fn abandoned_writes(
    ctx: &Ctx,
    objects_prefix: &str,
    cutoff: SystemTime,
) -> Result<Vec<AbandonedWrite>, StoreError> {
    let base = ctx.path_for(objects_prefix);
    let mut found = Vec::new();
    collect_staging(ctx, &base, cutoff, &mut found)?;
    for a in sorted_names(ctx, &base)?.iter().filter(|n| is_hex_pair(n)) {
        let dir_a = base.join(a);
        collect_staging(ctx, &dir_a, cutoff, &mut found)?;
        for b in sorted_names(ctx, &dir_a)?.iter().filter(|n| is_hex_pair(n)) {
            collect_staging(ctx, &dir_a.join(b), cutoff, &mut found)?;
        }
    }
    Ok(found)
}

fn collect_staging(
    ctx: &Ctx,
    dir: &Path,
    cutoff: SystemTime,
    found: &mut Vec<AbandonedWrite>,
) -> Result<(), StoreError> {
    for name in sorted_names(ctx, dir)? {
        if !name.starts_with(STAGING_PREFIX) {
            continue;
        }
        let path = dir.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // gone meanwhile: its writer finished
        };
        let started = meta
            .modified()
            .unwrap_or_else(|_| std::time::SystemTime::now());
        if !meta.is_file() || started > cutoff {
            continue;
        }
        let relative = path.strip_prefix(&ctx.root).unwrap_or(&path);
        found.push(AbandonedWrite {
            kind: AbandonedKind::StagingFile,
            name: relative.display().to_string(),
            size: Some(meta.len()),
            started,
            upload_id: None,
        });
    }
    Ok(())
}

/// Blocking: remove a listed staging file. Only names the listing produced (relative,
/// inside the root, a staging file name) are accepted.
pub(super) fn discard(ctx: &Ctx, write: &AbandonedWrite) -> Result<(), StoreError> {
    let relative = Path::new(&write.name);
    let is_staging = relative
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(STAGING_PREFIX));
    let inside = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if write.kind != AbandonedKind::StagingFile || !is_staging || !inside {
        return Err(StoreError::NotAnAbandonedWrite {
            url: ctx.url.clone(),
            name: write.name.clone(),
        });
    }
    let path = ctx.root.join(relative);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ctx.io("remove staging file", &path, e)),
    }
}
