//! Mapping aws-sdk-s3 errors to `StoreError`. The rule: unreachable endpoint, missing bucket
//! and refused credentials each become one clear variant naming the store URL; everything else
//! becomes `StoreError::S3` with the HTTP status, the S3 error code and the SDK's message
//! (SDK errors carry request ids, never credentials).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::S3Ctx;
use crate::error::StoreError;

/// HTTP status of a service or response error, if the server answered at all.
pub(super) fn status_of<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The error and its sources, by Display only, joined with ": ": one line. (The SDK's
/// `DisplayErrorContext` appends a `Debug` rendering of the whole error, connector
/// internals included, which turned one refused connection into a paragraph.)
fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        // Wrappers often repeat their source's text; keep each piece once.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

pub(super) fn map_sdk_error<E>(
    ctx: &S3Ctx,
    op: &'static str,
    key: &str,
    err: &SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let unreachable = || StoreError::Unreachable {
        url: ctx.url.clone(),
        endpoint: ctx
            .endpoint
            .as_deref()
            .map(|e| format!(" {e}"))
            .unwrap_or_default(),
        message: source_chain(err),
    };
    match err {
        SdkError::TimeoutError(_) => return unreachable(),
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => return unreachable(),
        _ => {}
    }
    let status = status_of(err);
    let code = err.code().map(str::to_owned);
    let message = err.message().map(str::to_owned);
    let detail = match (status, &code, &message) {
        (Some(s), Some(c), Some(m)) => format!("HTTP {s} {c}: {m}"),
        (Some(s), Some(c), None) => format!("HTTP {s} {c}"),
        (Some(s), None, _) => format!("HTTP {s}"),
        (None, _, _) => source_chain(err),
    };
    match (status, code.as_deref()) {
        (_, Some("NoSuchBucket")) => StoreError::BucketNotFound {
            url: ctx.url.clone(),
            bucket: ctx.bucket.clone(),
        },
        (Some(403), _)
        | (
            _,
            Some(
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken",
            ),
        ) => StoreError::AccessDenied {
            url: ctx.url.clone(),
            message: detail,
        },
        (Some(301), _) | (_, Some("PermanentRedirect" | "AuthorizationHeaderMalformed")) => {
            StoreError::S3 {
                url: ctx.url.clone(),
                op,
                key: key.to_owned(),
                message: format!("{detail} (is AWS_REGION the bucket's region?)"),
                status,
            }
        }
        _ => StoreError::S3 {
            url: ctx.url.clone(),
            op,
            key: key.to_owned(),
            message: detail,
            status,
        },
    }
}
