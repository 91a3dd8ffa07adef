//! S3 put-if-absent: HEAD first (re-runs upload nothing), then a conditional PutObject
//! (`If-None-Match: *`) carrying the SHA-256 checksum so the server rejects damaged bytes;
//! multipart above the threshold. 412 = already there; 409 (a concurrent conditional write in
//! flight) = look again and retry.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_smithy_types::byte_stream::Length;
use bytes::Bytes;

use super::errors::{map_sdk_error, status_of};
use super::multipart::{self, PartSource};
use super::{S3Ctx, read, spool};
use crate::backend::{InputStream, Stored};
use crate::error::StoreError;
use crate::layout::Layout;
use crate::sha::Sha256;

/// Result of one conditional write attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    Created,
    /// 412: an object is already there.
    Exists,
    /// 409 ConditionalRequestConflict: another conditional write to the key is in flight.
    Conflict,
}

/// The bytes to upload: in memory, or a byte range of a spooled file.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    Bytes(&'a Bytes),
    File(&'a Path),
}

const CONFLICT_RETRIES: u32 = 5;

pub(super) async fn put_bytes(
    ctx: &S3Ctx,
    key: &str,
    sha: &Sha256,
    bytes: Bytes,
) -> Result<bool, StoreError> {
    let size = bytes.len() as u64;
    put_if_absent(ctx, key, sha, size, Body::Bytes(&bytes), None).await
}

pub(super) async fn put_stream(
    ctx: &S3Ctx,
    layout: &Layout,
    input: InputStream<'_>,
) -> Result<Stored, StoreError> {
    // The key is the digest, known only at the end: spool to a temp file (bounded memory),
    // then upload from it. Part digests are computed during the same pass.
    let spooled = spool::spool(ctx, input).await?;
    let key = layout.key_for(&spooled.sha256);
    let created = put_if_absent(
        ctx,
        &key,
        &spooled.sha256,
        spooled.size,
        Body::File(spooled.path()),
        Some(&spooled.part_digests),
    )
    .await?;
    Ok(Stored {
        sha256: spooled.sha256,
        size: spooled.size,
        created,
        repaired: false,
    })
}

async fn put_if_absent(
    ctx: &S3Ctx,
    key: &str,
    sha: &Sha256,
    size: u64,
    body: Body<'_>,
    part_digests: Option<&[Sha256]>,
) -> Result<bool, StoreError> {
    for attempt in 0..CONFLICT_RETRIES {
        if let Some(existing) = read::head(ctx, key).await? {
            return check_size(ctx, key, size, existing).map(|()| false);
        }
        let outcome = if size > 0 && size >= ctx.multipart_threshold {
            let source = match body {
                Body::Bytes(b) => PartSource::Bytes(b),
                Body::File(path) => PartSource::File { path, part_digests },
            };
            multipart::upload(ctx, key, size, source).await?
        } else {
            put_object(ctx, key, sha, size, body).await?
        };
        match outcome {
            Attempt::Created => return Ok(true),
            Attempt::Exists => return Ok(false),
            Attempt::Conflict => {
                tracing::debug!(store = %ctx.url, key, attempt, "conditional write conflict; retrying");
                let jitter = rand::random::<u64>() % 100;
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt + 1) + jitter))
                    .await;
            }
        }
    }
    Err(StoreError::S3 {
        url: ctx.url.clone(),
        op: "PutObject",
        key: key.to_owned(),
        message: format!("conditional write still conflicting after {CONFLICT_RETRIES} attempts"),
        status: None,
    })
}

async fn put_object(
    ctx: &S3Ctx,
    key: &str,
    sha: &Sha256,
    size: u64,
    body: Body<'_>,
) -> Result<Attempt, StoreError> {
    let stream = match body {
        // Zero-copy: ByteStream shares the Bytes.
        Body::Bytes(b) => ByteStream::from(b.clone()),
        Body::File(path) => file_range(ctx, key, path, 0, size).await?,
    };
    let result = ctx
        .client
        .put_object()
        .bucket(&ctx.bucket)
        .key(key)
        .content_length(i64::try_from(size).unwrap_or(i64::MAX))
        .content_type("application/octet-stream")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(sha.to_base64())
        .if_none_match("*")
        .body(stream)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Attempt::Created),
        Err(e) => match status_of(&e) {
            Some(412) => Ok(Attempt::Exists),
            Some(409) => Ok(Attempt::Conflict),
            _ => Err(map_sdk_error(ctx, "PutObject", key, &e)),
        },
    }
}

/// A retryable body streaming `len` bytes of `path` from `offset` (nothing buffered).
pub(super) async fn file_range(
    ctx: &S3Ctx,
    key: &str,
    path: &Path,
    offset: u64,
    len: u64,
) -> Result<ByteStream, StoreError> {
    ByteStream::read_from()
        .path(path)
        .offset(offset)
        .length(Length::Exact(len))
        .build()
        .await
        .map_err(|e| StoreError::S3 {
            url: ctx.url.clone(),
            op: "read spool file",
            key: key.to_owned(),
            message: e.to_string(),
            status: None,
        })
}

fn check_size(ctx: &S3Ctx, key: &str, expected: u64, actual: u64) -> Result<(), StoreError> {
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
