//! The axum HTTP front: Gmail paths, batch endpoints, the control API, and turning
//! `ApiResponse` into HTTP (including the mid-body connection drop fault).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};

use crate::api::{ApiRequest, dispatch};
use crate::state::State;
use crate::wire::ApiResponse;
use crate::{batch, control};

pub(crate) type Shared = Arc<State>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/gmail/v1/{*rest}", any(gmail))
        .route("/batch/gmail/v1", post(batch_handler))
        .route("/batch", post(batch_handler))
        .nest("/_emulator", control::router())
        .fallback(fallback)
        .with_state(state)
}

fn auth(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn gmail(
    AxState(state): AxState<Shared>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = ApiRequest::new(method, uri.path(), uri.query(), auth(&headers));
    into_response(dispatch(&state, &req, false).await)
}

async fn batch_handler(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match batch::handle(&state, ct, auth(&headers), &body).await {
        Ok((content_type, body)) => {
            let mut r = Response::new(Body::from(body));
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r
        }
        Err(e) => into_response(e),
    }
}

async fn fallback(OriginalUri(uri): OriginalUri) -> Response {
    into_response(ApiResponse::error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("Not Found: {}", uri.path()),
    ))
}

/// Turn an API answer into HTTP; a dropped connection sends half the body then errors,
/// which makes hyper abort the connection.
pub(crate) fn into_response(r: ApiResponse) -> Response {
    let len = r.body.len();
    let mut resp = if r.drop_connection {
        let half = r.body.slice(..len / 2);
        let stream = futures::stream::iter(vec![
            Ok::<Bytes, std::io::Error>(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "injected connection drop",
            )),
        ]);
        let mut resp = Response::new(Body::from_stream(stream));
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        resp
    } else {
        Response::new(Body::from(r.body))
    };
    *resp.status_mut() = r.status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    if let Some(secs) = r.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp.into_response()
}
