//! S3 garbage-collection primitives: remove an object unless LastModified is past a cutoff
//! (HEAD, then DELETE: not atomic, see `BlobStore::remove_if_unmodified`), and list and abort
//! multipart uploads started before a cutoff (a killed writer's; each holds storage that is
//! billed until aborted).

use std::time::SystemTime;

use super::S3Ctx;
use super::errors::{map_sdk_error, status_of};
use crate::error::StoreError;
use crate::gc::{AbandonedKind, AbandonedWrite, Removal};

fn system_time(t: Option<&aws_smithy_types::DateTime>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or_else(std::time::SystemTime::now)
}

/// `Some(Absent)` when there is no object at `key`, `Some(Kept)` when it was
/// modified after `cutoff`; `None` when it may go.
async fn unless_unmodified(
    ctx: &S3Ctx,
    key: &str,
    cutoff: SystemTime,
) -> Result<Option<Removal>, StoreError> {
    ctx.ensure_bucket().await?;
    let modified = match ctx
        .client
        .head_object()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => system_time(out.last_modified()),
        Err(e) if status_of(&e) == Some(404) => return Ok(Some(Removal::Absent)),
        Err(e) => return Err(map_sdk_error(ctx, "HeadObject", key, &e)),
    };
    Ok((modified > cutoff).then_some(Removal::Kept))
}

pub(super) async fn remove_if_unmodified(
    ctx: &S3Ctx,
    key: &str,
    cutoff: SystemTime,
) -> Result<Removal, StoreError> {
    if let Some(kept_or_absent) = unless_unmodified(ctx, key, cutoff).await? {
        return Ok(kept_or_absent);
    }
    ctx.client
        .delete_object()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| map_sdk_error(ctx, "DeleteObject", key, &e))?;
    Ok(Removal::Removed)
}

/// See `Backend::move_if_unmodified`: HEAD, CopyObject, DeleteObject. Not atomic: a crash
/// after the copy leaves the object in both places (nothing lost; the next gc moves it
/// again). The copy's LastModified is the time of the copy.
pub(super) async fn move_if_unmodified(
    ctx: &S3Ctx,
    from: &str,
    to: &str,
    cutoff: SystemTime,
) -> Result<Removal, StoreError> {
    if let Some(kept_or_absent) = unless_unmodified(ctx, from, cutoff).await? {
        return Ok(kept_or_absent);
    }
    match ctx
        .client
        .copy_object()
        .bucket(&ctx.bucket)
        .key(to)
        .copy_source(copy_source(&ctx.bucket, from))
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if status_of(&e) == Some(404) => return Ok(Removal::Absent),
        Err(e) => return Err(map_sdk_error(ctx, "CopyObject", from, &e)),
    }
    ctx.client
        .delete_object()
        .bucket(&ctx.bucket)
        .key(from)
        .send()
        .await
        .map_err(|e| map_sdk_error(ctx, "DeleteObject", from, &e))?;
    Ok(Removal::Removed)
}

/// `bucket/key` as CopyObject's `x-amz-copy-source` wants it: URL-encoded. Keys are made of
/// `[A-Za-z0-9._@+=/-]` (see `Layout`); of those `+`, `=` and `@` are encoded.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for c in key.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '/' => out.push(c),
            other => {
                let mut buf = [0u8; 4];
                for b in other.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// PutObject of an empty probe, HEAD for the LastModified S3 gave it (whole seconds),
/// DeleteObject.
pub(super) async fn clock_probe(ctx: &S3Ctx, key: &str) -> Result<SystemTime, StoreError> {
    ctx.ensure_bucket().await?;
    ctx.client
        .put_object()
        .bucket(&ctx.bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b""))
        .send()
        .await
        .map_err(|e| map_sdk_error(ctx, "PutObject", key, &e))?;
    let head = ctx
        .client
        .head_object()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| map_sdk_error(ctx, "HeadObject", key, &e));
    let removed = ctx
        .client
        .delete_object()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| map_sdk_error(ctx, "DeleteObject", key, &e));
    let modified = head?
        .last_modified()
        .and_then(|t| SystemTime::try_from(*t).ok());
    removed?;
    modified.ok_or_else(|| StoreError::S3 {
        url: ctx.url.clone(),
        op: "HeadObject",
        key: key.to_owned(),
        message: "no Last-Modified on the clock probe".into(),
        status: None,
    })
}

pub(super) async fn abandoned_uploads(
    ctx: &S3Ctx,
    objects_prefix: &str,
    cutoff: SystemTime,
) -> Result<Vec<AbandonedWrite>, StoreError> {
    ctx.ensure_bucket().await?;
    let mut found = Vec::new();
    let mut markers: (Option<String>, Option<String>) = (None, None);
    loop {
        let page = ctx
            .client
            .list_multipart_uploads()
            .bucket(&ctx.bucket)
            .prefix(objects_prefix)
            .set_key_marker(markers.0.take())
            .set_upload_id_marker(markers.1.take())
            .send()
            .await
            .map_err(|e| map_sdk_error(ctx, "ListMultipartUploads", objects_prefix, &e))?;
        for upload in page.uploads() {
            let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            let started = system_time(upload.initiated());
            if started <= cutoff {
                found.push(AbandonedWrite {
                    kind: AbandonedKind::MultipartUpload,
                    name: key.to_owned(),
                    size: None,
                    started,
                    upload_id: Some(id.to_owned()),
                });
            }
        }
        if !page.is_truncated().unwrap_or(false) {
            return Ok(found);
        }
        markers = (
            page.next_key_marker().map(str::to_owned),
            page.next_upload_id_marker().map(str::to_owned),
        );
        if markers.0.is_none() && markers.1.is_none() {
            return Ok(found); // a server that truncates without markers: stop, not loop
        }
    }
}

pub(super) async fn abort_upload(ctx: &S3Ctx, write: &AbandonedWrite) -> Result<(), StoreError> {
    let (AbandonedKind::MultipartUpload, Some(id)) = (write.kind, write.upload_id.as_deref())
    else {
        return Err(StoreError::NotAnAbandonedWrite {
            url: ctx.url.clone(),
            name: write.name.clone(),
        });
    };
    match ctx
        .client
        .abort_multipart_upload()
        .bucket(&ctx.bucket)
        .key(&write.name)
        .upload_id(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // NoSuchUpload: completed or aborted meanwhile.
        Err(e) if status_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(map_sdk_error(ctx, "AbortMultipartUpload", &write.name, &e)),
    }
}
