//! fs read paths: get, head, streaming re-hash for verify, and the key listing (a blocking
//! directory walk feeding a bounded channel, so listing a large store does not build a Vec).

use std::io::{ErrorKind, Read};
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::Ctx;
use crate::backend::{Listed, OutputStream};
use crate::error::StoreError;
use crate::sha::{Hasher, Sha256};

pub(super) async fn get(ctx: &Ctx, key: &str) -> Result<Option<Bytes>, StoreError> {
    let path = ctx.path_for(key);
    // tokio::fs::read sizes its buffer from the file's metadata: one allocation, one copy.
    match tokio::fs::read(&path).await {
        Ok(v) => Ok(Some(Bytes::from(v))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ctx.io("read object", &path, e)),
    }
}

pub(super) async fn get_stream(ctx: &Ctx, key: &str) -> Result<Option<OutputStream>, StoreError> {
    let path = ctx.path_for(key);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ctx.io("open object", &path, e)),
    };
    let ctx = ctx.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
        .map(move |r| r.map_err(|e| ctx.io("read object", &path, e)));
    Ok(Some(stream.boxed()))
}

/// Blocking: the object's size, or `None` when absent (`head` and `heads`).
pub(super) fn stat(ctx: &Ctx, key: &str) -> Result<Option<u64>, StoreError> {
    let path = ctx.path_for(key);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ctx.io("stat object", &path, e)),
    }
}

/// Blocking: hash the file in 1 MiB reads.
pub(super) fn hash_file(ctx: &Ctx, key: &str) -> Result<Option<Sha256>, StoreError> {
    let path = ctx.path_for(key);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ctx.io("open object", &path, e)),
    };
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ctx.io("read object", &path, e)),
        }
    }
    Ok(Some(hasher.finish().0))
}

pub(super) fn list(
    ctx: Ctx,
    objects_prefix: String,
) -> BoxStream<'static, Result<Listed, StoreError>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    tokio::task::spawn_blocking(move || {
        let base = ctx.path_for(&objects_prefix);
        let send = |item| tx.blocking_send(item).is_ok();
        // Two levels of two-hex-digit fan-out directories, then object files.
        let level1 = match sorted_names(&ctx, &base) {
            Ok(v) => v,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        for a in level1.iter().filter(|n| is_hex_pair(n)) {
            let dir_a = base.join(a);
            let level2 = match sorted_names(&ctx, &dir_a) {
                Ok(v) => v,
                Err(e) => {
                    send(Err(e));
                    return;
                }
            };
            for b in level2.iter().filter(|n| is_hex_pair(n)) {
                let files = match sorted_names(&ctx, &dir_a.join(b)) {
                    Ok(v) => v,
                    Err(e) => {
                        send(Err(e));
                        return;
                    }
                };
                for name in files.iter().filter(|n| !n.starts_with('.')) {
                    let path = dir_a.join(b).join(name);
                    let item = match std::fs::metadata(&path) {
                        Ok(meta) => Ok(Listed {
                            key: format!("{objects_prefix}{a}/{b}/{name}"),
                            size: meta.len(),
                            modified: meta
                                .modified()
                                .unwrap_or_else(|_| std::time::SystemTime::now()),
                        }),
                        // Removed since the directory was read: not an object any more.
                        Err(e) if e.kind() == ErrorKind::NotFound => continue,
                        Err(e) => Err(ctx.io("stat object", &path, e)),
                    };
                    if !send(item) {
                        return; // the consumer went away
                    }
                }
            }
        }
    });
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Directory entry names, sorted; a missing directory is empty (nothing stored yet).
pub(super) fn sorted_names(ctx: &Ctx, dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(it) => it,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ctx.io("list directory", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ctx.io("list directory", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

pub(super) fn is_hex_pair(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
