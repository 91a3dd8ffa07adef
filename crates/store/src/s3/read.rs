//! S3 reads: HEAD, GET into one pre-sized buffer, streaming re-hash, paginated listing.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};

use super::S3Ctx;
use super::errors::{map_sdk_error, status_of};
use crate::backend::{Listed, OutputStream};
use crate::error::StoreError;
use crate::sha::{Hasher, Sha256};

pub(super) async fn head(ctx: &S3Ctx, key: &str) -> Result<Option<u64>, StoreError> {
    ctx.ensure_bucket().await?;
    match ctx
        .client
        .head_object()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
        Err(e) if status_of(&e) == Some(404) => Ok(None),
        Err(e) => Err(map_sdk_error(ctx, "HeadObject", key, &e)),
    }
}

/// GET the object; `None` when absent.
async fn open(
    ctx: &S3Ctx,
    key: &str,
) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StoreError> {
    ctx.ensure_bucket().await?;
    match ctx
        .client
        .get_object()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out)),
        Err(e) if status_of(&e) == Some(404) => Ok(None),
        Err(e) => Err(map_sdk_error(ctx, "GetObject", key, &e)),
    }
}

fn body_error(ctx: &S3Ctx, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::S3 {
        url: ctx.url.clone(),
        op: "GetObject (body)",
        key: key.to_owned(),
        message: e.to_string(),
        status: None,
    }
}

pub(super) async fn get(ctx: &S3Ctx, key: &str) -> Result<Option<Bytes>, StoreError> {
    let Some(mut out) = open(ctx, key).await? else {
        return Ok(None);
    };
    // One buffer sized up front: the object is held once, not as segments plus a copy.
    let expected = usize::try_from(out.content_length().unwrap_or(0).max(0)).unwrap_or(0);
    let mut buf = BytesMut::with_capacity(expected);
    while let Some(chunk) = out
        .body
        .try_next()
        .await
        .map_err(|e| body_error(ctx, key, e))?
    {
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

pub(super) async fn get_stream(
    ctx: Arc<S3Ctx>,
    key: &str,
) -> Result<Option<OutputStream>, StoreError> {
    let Some(out) = open(&ctx, key).await? else {
        return Ok(None);
    };
    let key = key.to_owned();
    let stream = stream::unfold(Some(out.body), move |body| {
        let (ctx, key) = (ctx.clone(), key.clone());
        async move {
            let mut body = body?;
            match body.try_next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
                Ok(None) => None,
                Err(e) => Some((Err(body_error(&ctx, &key, e)), None)),
            }
        }
    });
    Ok(Some(stream.boxed()))
}

pub(super) async fn hash_object(ctx: &S3Ctx, key: &str) -> Result<Option<Sha256>, StoreError> {
    let Some(mut out) = open(ctx, key).await? else {
        return Ok(None);
    };
    let mut hasher = Hasher::default();
    while let Some(chunk) = out
        .body
        .try_next()
        .await
        .map_err(|e| body_error(ctx, key, e))?
    {
        hasher.update(&chunk);
    }
    Ok(Some(hasher.finish().0))
}

pub(super) fn list(
    ctx: Arc<S3Ctx>,
    objects_prefix: String,
) -> BoxStream<'static, Result<Listed, StoreError>> {
    let pages = ctx
        .client
        .list_objects_v2()
        .bucket(&ctx.bucket)
        .prefix(&objects_prefix)
        .into_paginator()
        .send();
    stream::unfold(Some((pages, ctx)), |state| async move {
        let (mut pages, ctx) = state?;
        match pages.next().await? {
            Ok(page) => {
                let keys: Vec<Result<Listed, StoreError>> = page
                    .contents()
                    .iter()
                    .filter_map(|o| {
                        let key = o.key()?.to_owned();
                        Some(Ok(Listed {
                            key,
                            size: o.size().unwrap_or(0).max(0) as u64,
                            modified: o
                                .last_modified()
                                .and_then(|t| std::time::SystemTime::try_from(*t).ok())
                                .unwrap_or_else(std::time::SystemTime::now),
                        }))
                    })
                    .collect();
                Some((keys, Some((pages, ctx))))
            }
            // Stop after the first error: the paginator cannot resume.
            Err(e) => Some((
                vec![Err(map_sdk_error(&ctx, "ListObjectsV2", "", &e))],
                None,
            )),
        }
    })
    .flat_map(stream::iter)
    .boxed()
}
