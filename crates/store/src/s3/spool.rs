//! Spooling a stream of unknown size to a temporary file for S3: the key (the digest) is known
//! only at the end, and the upload needs a known length and checksum. The whole digest and the
//! per-part digests are computed in the same pass, so memory stays at one chunk.

use std::path::Path;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::S3Ctx;
use crate::backend::InputStream;
use crate::error::StoreError;
use crate::sha::{Hasher, Sha256};

pub(super) struct Spooled {
    /// Deleted when dropped.
    file: tempfile::TempPath,
    pub sha256: Sha256,
    pub size: u64,
    /// Digest of each `part_size` slice, in order (for multipart part checksums).
    pub part_digests: Vec<Sha256>,
}

impl Spooled {
    pub(super) fn path(&self) -> &Path {
        &self.file
    }
}

pub(super) async fn spool(ctx: &S3Ctx, mut input: InputStream<'_>) -> Result<Spooled, StoreError> {
    let dir = ctx.spool_dir.clone().unwrap_or_else(std::env::temp_dir);
    let io = |op: &'static str, e: std::io::Error| StoreError::Io {
        url: ctx.url.clone(),
        op,
        path: dir.display().to_string(),
        source: e,
    };
    let named = tempfile::Builder::new()
        .prefix("mailingest-spool-")
        .tempfile_in(&dir)
        .map_err(|e| io("create spool file", e))?;
    let (std_file, path) = named.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);

    let part_size = ctx.part_size;
    let mut whole = Hasher::default();
    let mut part = Hasher::default();
    let mut part_digests = Vec::new();
    while let Some(chunk) = input.next().await {
        let chunk = chunk.map_err(|source| StoreError::Input {
            url: ctx.url.clone(),
            source,
        })?;
        whole.update(&chunk);
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let room = usize::try_from(part_size - part.len()).unwrap_or(usize::MAX);
            let (head, tail) = rest.split_at(room.min(rest.len()));
            part.update(head);
            if part.len() == part_size {
                part_digests.push(std::mem::take(&mut part).finish().0);
            }
            rest = tail;
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| io("write spool file", e))?;
    }
    if part.len() > 0 {
        part_digests.push(part.finish().0);
    }
    file.flush().await.map_err(|e| io("write spool file", e))?;
    drop(file);
    let (sha256, size) = whole.finish();
    Ok(Spooled {
        file: path,
        sha256,
        size,
        part_digests,
    })
}
