//! Multipart upload for large objects: parts carry their own SHA-256 checksums, up to
//! `PART_CONCURRENCY` parts are in flight, CompleteMultipartUpload is conditional
//! (`If-None-Match: *`, where the server supports it), and the upload is aborted on every
//! failure or when the object turned out to exist, so no orphaned parts are left billing.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::S3Ctx;
use super::errors::{map_sdk_error, status_of};
use super::put::{Attempt, file_range};
use crate::error::StoreError;
use crate::sha::Sha256;

const PART_CONCURRENCY: usize = 4;

pub(super) enum PartSource<'a> {
    /// Parts are zero-copy slices of the buffer.
    Bytes(&'a Bytes),
    /// Parts stream from the file; digests precomputed while spooling (if available).
    File {
        path: &'a Path,
        part_digests: Option<&'a [Sha256]>,
    },
}

pub(super) async fn upload(
    ctx: &S3Ctx,
    key: &str,
    size: u64,
    source: PartSource<'_>,
) -> Result<Attempt, StoreError> {
    let created = ctx
        .client
        .create_multipart_upload()
        .bucket(&ctx.bucket)
        .key(key)
        .content_type("application/octet-stream")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .map_err(|e| map_sdk_error(ctx, "CreateMultipartUpload", key, &e))?;
    let Some(upload_id) = created.upload_id().map(str::to_owned) else {
        return Err(StoreError::S3 {
            url: ctx.url.clone(),
            op: "CreateMultipartUpload",
            key: key.to_owned(),
            message: "response carried no upload id".into(),
            status: None,
        });
    };
    let result = upload_parts_and_complete(ctx, key, &upload_id, size, &source).await;
    if !matches!(result, Ok(Attempt::Created)) {
        abort(ctx, key, &upload_id).await;
    }
    result
}

async fn upload_parts_and_complete(
    ctx: &S3Ctx,
    key: &str,
    upload_id: &str,
    size: u64,
    source: &PartSource<'_>,
) -> Result<Attempt, StoreError> {
    let part_size = ctx.part_size;
    let count = size.div_ceil(part_size);
    let parts: Vec<CompletedPart> = futures::stream::iter(0..count)
        .map(|index| {
            let offset = index * part_size;
            let len = part_size.min(size - offset);
            upload_part(ctx, key, upload_id, index, offset, len, source)
        })
        .buffered(PART_CONCURRENCY)
        .try_collect()
        .await?;
    let result = ctx
        .client
        .complete_multipart_upload()
        .bucket(&ctx.bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .if_none_match("*")
        .send()
        .await;
    match result {
        Ok(_) => Ok(Attempt::Created),
        Err(e) => match status_of(&e) {
            Some(412) => Ok(Attempt::Exists),
            Some(409) => Ok(Attempt::Conflict),
            _ => Err(map_sdk_error(ctx, "CompleteMultipartUpload", key, &e)),
        },
    }
}

async fn upload_part(
    ctx: &S3Ctx,
    key: &str,
    upload_id: &str,
    index: u64,
    offset: u64,
    len: u64,
    source: &PartSource<'_>,
) -> Result<CompletedPart, StoreError> {
    let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let (body, digest) = match source {
        PartSource::Bytes(bytes) => {
            let slice = bytes.slice(to_usize(offset)..to_usize(offset + len));
            let digest = Sha256::digest(&slice);
            (ByteStream::from(slice), digest)
        }
        PartSource::File { path, part_digests } => {
            let digest = match part_digests.and_then(|d| d.get(to_usize(index))) {
                Some(d) => *d,
                None => digest_file_range(ctx, key, path, offset, len).await?,
            };
            (file_range(ctx, key, path, offset, len).await?, digest)
        }
    };
    // Part numbers are 1-based and at most 10,000 (part size keeps us far below).
    let part_number = i32::try_from(index + 1).unwrap_or(i32::MAX);
    let out = ctx
        .client
        .upload_part()
        .bucket(&ctx.bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(part_number)
        .content_length(i64::try_from(len).unwrap_or(i64::MAX))
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(digest.to_base64())
        .body(body)
        .send()
        .await
        .map_err(|e| map_sdk_error(ctx, "UploadPart", key, &e))?;
    Ok(CompletedPart::builder()
        .part_number(part_number)
        .set_e_tag(out.e_tag().map(str::to_owned))
        .checksum_sha256(digest.to_base64())
        .build())
}

/// Fallback when part digests were not precomputed: hash the range from the file.
async fn digest_file_range(
    ctx: &S3Ctx,
    key: &str,
    path: &Path,
    offset: u64,
    len: u64,
) -> Result<Sha256, StoreError> {
    let mut stream = file_range(ctx, key, path, offset, len).await?;
    let mut hasher = crate::sha::Hasher::default();
    while let Some(chunk) = stream.try_next().await.map_err(|e| StoreError::S3 {
        url: ctx.url.clone(),
        op: "read spool file",
        key: key.to_owned(),
        message: e.to_string(),
        status: None,
    })? {
        hasher.update(&chunk);
    }
    Ok(hasher.finish().0)
}

async fn abort(ctx: &S3Ctx, key: &str, upload_id: &str) {
    if let Err(e) = ctx
        .client
        .abort_multipart_upload()
        .bucket(&ctx.bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        // Best effort: the caller already has the error that matters. A bucket lifecycle
        // rule for incomplete uploads is the backstop.
        tracing::warn!(store = %ctx.url, key, error = %map_sdk_error(ctx, "AbortMultipartUpload", key, &e), "abort failed");
    }
}
