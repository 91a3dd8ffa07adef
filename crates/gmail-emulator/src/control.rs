//! The HTTP control API under `/_emulator/` (a prefix no Gmail path uses).
//!
//! POST   /mailboxes/{mb}/messages?labels=A,B&threadId=T   body = raw RFC 822 → {"id"}
//! GET    /mailboxes/{mb}/messages                          → {"ids": [...]}
//! DELETE /mailboxes/{mb}/messages/{id}
//! POST   /mailboxes/{mb}/messages/{id}/modify  {"addLabelIds":[],"removeLabelIds":[]}
//! POST   /mailboxes/{mb}/messages/{id}/trash
//! POST   /mailboxes/{mb}/expire-history
//! POST   /mailboxes/{mb}/labels              {"name"}  → {"id"}   (labels.create)
//! PATCH  /mailboxes/{mb}/labels/{id}         {"name"}             (a rename)
//! DELETE /mailboxes/{mb}/labels/{id}         (its messages lose it, in history)
//! GET    /mailboxes/{mb}/takeout                           → the mailbox as a Takeout mbox
//! GET    /mailboxes/{mb}/vault/mbox                        → the mailbox as a Vault export's mbox
//! GET    /mailboxes/{mb}/vault/metadata                    → and that export's metadata XML
//! GET|PUT|DELETE /faults      GET|PUT|DELETE /quota      GET /stats    POST /stats/reset

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::config::{Faults, Quota};
use crate::error::EmulatorError;
use crate::server::Shared;

pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/mailboxes/{mb}/messages", post(insert).get(list))
        .route(
            "/mailboxes/{mb}/messages/{id}",
            axum::routing::delete(delete),
        )
        .route("/mailboxes/{mb}/messages/{id}/modify", post(modify))
        .route("/mailboxes/{mb}/messages/{id}/trash", post(trash))
        .route("/mailboxes/{mb}/expire-history", post(expire))
        .route("/mailboxes/{mb}/labels", post(create_label))
        .route(
            "/mailboxes/{mb}/labels/{id}",
            axum::routing::patch(rename_label).delete(delete_label),
        )
        .route("/mailboxes/{mb}/takeout", get(takeout))
        .route("/mailboxes/{mb}/vault/mbox", get(vault_mbox))
        .route("/mailboxes/{mb}/vault/metadata", get(vault_metadata))
        .route(
            "/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/quota", get(get_quota).put(put_quota).delete(clear_quota))
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
}

fn err(e: EmulatorError) -> Response {
    let status = match e {
        EmulatorError::UnknownMailbox(_)
        | EmulatorError::MessageNotFound { .. }
        | EmulatorError::ThreadNotFound { .. } => StatusCode::NOT_FOUND,
        EmulatorError::Label { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

fn done(r: Result<(), EmulatorError>) -> Response {
    match r {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => err(e),
    }
}

async fn insert(
    AxState(s): AxState<Shared>,
    Path(mb): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let labels: Vec<&str> = q
        .get("labels")
        .map(|l| l.split(',').filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    match s.insert_raw(&mb, &body, &labels, q.get("threadId").map(String::as_str)) {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(e) => err(e),
    }
}

async fn list(AxState(s): AxState<Shared>, Path(mb): Path<String>) -> Response {
    if let Err(e) = s.read(&mb) {
        return err(e);
    }
    Json(json!({"ids": s.message_ids(&mb)})).into_response()
}

async fn delete(AxState(s): AxState<Shared>, Path((mb, id)): Path<(String, String)>) -> Response {
    done(s.delete_message(&mb, &id))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Modify {
    add_label_ids: Vec<String>,
    remove_label_ids: Vec<String>,
}

async fn modify(
    AxState(s): AxState<Shared>,
    Path((mb, id)): Path<(String, String)>,
    Json(m): Json<Modify>,
) -> Response {
    let add: Vec<&str> = m.add_label_ids.iter().map(String::as_str).collect();
    let remove: Vec<&str> = m.remove_label_ids.iter().map(String::as_str).collect();
    done(s.modify_labels(&mb, &id, &add, &remove))
}

async fn trash(AxState(s): AxState<Shared>, Path((mb, id)): Path<(String, String)>) -> Response {
    done(s.trash(&mb, &id))
}

async fn expire(AxState(s): AxState<Shared>, Path(mb): Path<String>) -> Response {
    done(s.expire_history(&mb))
}

#[derive(Deserialize)]
struct LabelName {
    name: String,
}

async fn create_label(
    AxState(s): AxState<Shared>,
    Path(mb): Path<String>,
    Json(l): Json<LabelName>,
) -> Response {
    match s.create_label(&mb, &l.name) {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(e) => err(e),
    }
}

async fn takeout(AxState(s): AxState<Shared>, Path(mb): Path<String>) -> Response {
    match s.read(&mb) {
        Ok(mb) => (
            [(axum::http::header::CONTENT_TYPE, "application/mbox")],
            crate::takeout::render(&mb),
        )
            .into_response(),
        Err(e) => err(e),
    }
}

async fn vault_mbox(AxState(s): AxState<Shared>, Path(mb): Path<String>) -> Response {
    match s.read(&mb) {
        Ok(mb) => (
            [(axum::http::header::CONTENT_TYPE, "application/mbox")],
            crate::vault::render_mbox(&mb),
        )
            .into_response(),
        Err(e) => err(e),
    }
}

async fn vault_metadata(AxState(s): AxState<Shared>, Path(mb): Path<String>) -> Response {
    match s.read(&mb) {
        Ok(mb) => (
            [(axum::http::header::CONTENT_TYPE, "application/xml")],
            crate::vault::render_metadata(&mb),
        )
            .into_response(),
        Err(e) => err(e),
    }
}

async fn rename_label(
    AxState(s): AxState<Shared>,
    Path((mb, id)): Path<(String, String)>,
    Json(l): Json<LabelName>,
) -> Response {
    done(s.rename_label(&mb, &id, &l.name))
}

async fn delete_label(
    AxState(s): AxState<Shared>,
    Path((mb, id)): Path<(String, String)>,
) -> Response {
    done(s.delete_label(&mb, &id))
}

async fn get_faults(AxState(s): AxState<Shared>) -> Json<Faults> {
    Json(s.faults())
}

async fn put_faults(AxState(s): AxState<Shared>, Json(f): Json<Faults>) -> Json<Faults> {
    s.set_faults(f.clone());
    Json(f)
}

async fn clear_faults(AxState(s): AxState<Shared>) -> Json<Faults> {
    s.set_faults(Faults::default());
    Json(Faults::default())
}

async fn get_quota(AxState(s): AxState<Shared>) -> Json<Quota> {
    Json(s.quota())
}

async fn put_quota(AxState(s): AxState<Shared>, Json(q): Json<Quota>) -> Json<Quota> {
    s.set_quota(q.clone());
    Json(q)
}

async fn clear_quota(AxState(s): AxState<Shared>) -> Json<Quota> {
    s.set_quota(Quota::default());
    Json(Quota::default())
}

async fn stats(AxState(s): AxState<Shared>) -> Json<crate::limits::Stats> {
    Json(s.stats())
}

async fn reset_stats(AxState(s): AxState<Shared>) -> Response {
    s.limits.reset();
    Json(json!({"ok": true})).into_response()
}
