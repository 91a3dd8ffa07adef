//! Gmail endpoint handlers. Each takes the mailbox lock briefly, copies what it needs
//! and renders outside the lock where rendering is expensive.

use std::collections::HashSet;

use base64::Engine as _;
use http::StatusCode;
use serde_json::{Value, json};

use crate::api::{ApiRequest, Endpoint};
use crate::config::Faults;
use crate::model::{Change, Mailbox, Message, OrderKey};
use crate::query::{self, Query};
use crate::state::{State, now_ms};
use crate::wire::{self, ApiResponse, Format, b64_nopad};

pub(crate) fn handle(
    state: &State,
    req: &ApiRequest,
    mailbox: &str,
    endpoint: &Endpoint,
    faults: &Faults,
) -> ApiResponse {
    match endpoint {
        Endpoint::Profile => profile(state, mailbox),
        Endpoint::MessagesList => messages_list(state, req, mailbox),
        Endpoint::MessagesGet(id) => messages_get(state, req, mailbox, id, faults),
        Endpoint::AttachmentsGet {
            message,
            attachment,
        } => attachments_get(state, mailbox, message, attachment),
        Endpoint::ThreadsList => threads_list(state, req, mailbox),
        Endpoint::ThreadsGet(id) => threads_get(state, req, mailbox, id),
        Endpoint::HistoryList => history_list(state, req, mailbox, faults),
        Endpoint::LabelsList => labels_list(state, mailbox),
    }
}

fn profile(state: &State, mailbox: &str) -> ApiResponse {
    let Ok(mb) = state.read(mailbox) else {
        return ApiResponse::not_found();
    };
    ApiResponse::json(&json!({
        "emailAddress": mb.email,
        "messagesTotal": mb.messages.len(),
        "threadsTotal": mb.thread_count(),
        "historyId": mb.history_id.to_string(),
    }))
}

fn labels_list(state: &State, mailbox: &str) -> ApiResponse {
    let Ok(mb) = state.read(mailbox) else {
        return ApiResponse::not_found();
    };
    let labels: Vec<Value> = mb
        .labels
        .values()
        .map(|l| {
            if l.system {
                json!({"id": l.id, "name": l.name, "type": "system"})
            } else {
                json!({"id": l.id, "name": l.name, "type": "user",
                       "messageListVisibility": "show", "labelListVisibility": "labelShow"})
            }
        })
        .collect();
    ApiResponse::json(&json!({ "labels": labels }))
}

/// Shared list filter: q + labelIds + includeSpamTrash.
struct Filter {
    query: Query,
    /// Every one of these label ids must be present. `None` entry = unknown label → no match.
    required: Vec<Option<String>>,
    include_spam_trash: bool,
}

impl Filter {
    fn from_request(req: &ApiRequest, mb: &Mailbox) -> Result<Filter, ApiResponse> {
        let query = match req.param("q") {
            Some(q) => query::parse(q, now_ms()).map_err(|e| ApiResponse::bad_request(&e))?,
            None => Query::default(),
        };
        let mut required: Vec<Option<String>> = req
            .params_all("labelIds")
            .iter()
            .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|v| !v.is_empty())
            .map(|v| mb.labels.contains_key(&v).then_some(v))
            .collect();
        for l in &query.labels {
            required.push(mb.find_label_by_name(l));
        }
        let include_spam_trash = match req.param("includeSpamTrash") {
            Some(v) => v.eq_ignore_ascii_case("true") || v == "1",
            None => false,
        };
        let asks_spam_trash = required
            .iter()
            .flatten()
            .any(|l| l == "SPAM" || l == "TRASH");
        Ok(Filter {
            include_spam_trash: include_spam_trash || query.anywhere || asks_spam_trash,
            query,
            required,
        })
    }

    fn matches(&self, m: &Message) -> bool {
        if !self.include_spam_trash && m.is_spam_or_trash() {
            return false;
        }
        if let Some(a) = self.query.after_ms
            && m.internal_date_ms < a
        {
            return false;
        }
        if let Some(b) = self.query.before_ms
            && m.internal_date_ms >= b
        {
            return false;
        }
        for l in &self.required {
            match l {
                Some(l) if m.has_label(l) => {}
                _ => return false,
            }
        }
        if self.query.has_attachment && !m.content.parsed().has_attachment {
            return false;
        }
        true
    }
}

fn max_results(req: &ApiRequest) -> Result<usize, ApiResponse> {
    match req.param("maxResults") {
        None => Ok(100),
        Some(v) => v
            .parse::<usize>()
            .map(|n| n.clamp(1, 500))
            .map_err(|_| ApiResponse::bad_request(&format!("Invalid value for maxResults: {v}"))),
    }
}

/// Page tokens name the order key of the last item served: stable under mutation.
fn encode_token(key: &OrderKey) -> String {
    b64_nopad(format!("{}:{}", key.0.0, key.1.0).as_bytes())
}

fn decode_token(token: &str) -> Result<OrderKey, ApiResponse> {
    let bad = || ApiResponse::bad_request("Invalid pageToken");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (date, id) = text.split_once(':').ok_or_else(bad)?;
    let date: i64 = date.parse().map_err(|_| bad())?;
    Ok((std::cmp::Reverse(date), std::cmp::Reverse(id.to_string())))
}

fn start_bound(req: &ApiRequest) -> Result<std::ops::Bound<OrderKey>, ApiResponse> {
    Ok(match req.param("pageToken").filter(|t| !t.is_empty()) {
        Some(t) => std::ops::Bound::Excluded(decode_token(t)?),
        None => std::ops::Bound::Unbounded,
    })
}

fn messages_list(state: &State, req: &ApiRequest, mailbox: &str) -> ApiResponse {
    let Ok(mb) = state.read(mailbox) else {
        return ApiResponse::not_found();
    };
    let filter = match Filter::from_request(req, &mb) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let (max, start) = match (max_results(req), start_bound(req)) {
        (Ok(m), Ok(s)) => (m, s),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let total = mb
        .order
        .iter()
        .filter(|k| mb.messages.get(&k.1.0).is_some_and(|m| filter.matches(m)))
        .count();
    let mut out = Vec::new();
    let mut next = None;
    for key in mb.order.range((start, std::ops::Bound::Unbounded)) {
        let Some(m) = mb.messages.get(&key.1.0) else {
            continue;
        };
        if !filter.matches(m) {
            continue;
        }
        if out.len() == max {
            next = out.last().map(|(k, _): &(OrderKey, Value)| encode_token(k));
            break;
        }
        out.push((key.clone(), json!({"id": m.id, "threadId": m.thread_id})));
    }
    let mut v = serde_json::Map::new();
    if !out.is_empty() {
        v.insert(
            "messages".into(),
            Value::Array(out.into_iter().map(|(_, j)| j).collect()),
        );
    }
    if let Some(n) = next {
        v.insert("nextPageToken".into(), json!(n));
    }
    v.insert("resultSizeEstimate".into(), json!(total));
    ApiResponse::json(&Value::Object(v))
}

fn parse_format(req: &ApiRequest, default: Format) -> Result<Format, ApiResponse> {
    match req.param("format") {
        None => Ok(default),
        Some(f) => match f.to_ascii_lowercase().as_str() {
            "minimal" => Ok(Format::Minimal),
            "metadata" => Ok(Format::Metadata(req.params_all("metadataHeaders"))),
            "full" => Ok(Format::Full),
            "raw" => Ok(Format::Raw),
            _ => Err(ApiResponse::bad_request(&format!(
                "Invalid value at 'format' ({f})"
            ))),
        },
    }
}

fn messages_get(
    state: &State,
    req: &ApiRequest,
    mailbox: &str,
    id: &str,
    faults: &Faults,
) -> ApiResponse {
    let format = match parse_format(req, Format::Full) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if let Some(&status) = faults.failing_messages.get(id) {
        state.limits.fault("failingMessage");
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = if status.is_server_error() {
            "backendError"
        } else {
            "invalidArgument"
        };
        return ApiResponse::error(status, reason, &format!("Poisoned message {id}"));
    }
    if faults.vanish_rate > 0.0 && state.chance(faults.vanish_rate) {
        // The message disappears between list and get: really delete it, so history agrees.
        if state.delete_message(mailbox, id).is_ok() {
            state.limits.fault("vanish");
        }
        return ApiResponse::not_found();
    }
    let msg = {
        let Ok(mb) = state.read(mailbox) else {
            return ApiResponse::not_found();
        };
        match mb.messages.get(id) {
            Some(m) => m.clone(),
            None => return ApiResponse::not_found(),
        }
    };
    if format == Format::Raw {
        return ApiResponse::ok_bytes(wire::raw_message_bytes(&msg));
    }
    ApiResponse::json(&wire::message_json(state, &msg, &format))
}

fn attachments_get(state: &State, mailbox: &str, message: &str, attachment: &str) -> ApiResponse {
    let Some((msg_id, part_id)) = wire::parse_attachment_id(attachment) else {
        return ApiResponse::bad_request("Invalid attachment token");
    };
    if msg_id != message {
        return ApiResponse::bad_request("Invalid attachment token");
    }
    let content = {
        let Ok(mb) = state.read(mailbox) else {
            return ApiResponse::not_found();
        };
        match mb.messages.get(message) {
            Some(m) => m.content.clone(),
            None => return ApiResponse::not_found(),
        }
    };
    let parsed = crate::mime_tree::Parsed::parse(&content.raw);
    match parsed.root.find(&part_id) {
        Some(p) => ApiResponse::json(&json!({"size": p.body.len(), "data": b64_nopad(&p.body)})),
        None => ApiResponse::not_found(),
    }
}

/// Matching threads, newest first: (newest matching key, thread id).
fn matching_threads(mb: &Mailbox, filter: &Filter) -> Vec<(OrderKey, String)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for key in &mb.order {
        let Some(m) = mb.messages.get(&key.1.0) else {
            continue;
        };
        if filter.matches(m) && seen.insert(m.thread_id.clone()) {
            out.push((key.clone(), m.thread_id.clone()));
        }
    }
    out
}

fn threads_list(state: &State, req: &ApiRequest, mailbox: &str) -> ApiResponse {
    let Ok(mb) = state.read(mailbox) else {
        return ApiResponse::not_found();
    };
    let filter = match Filter::from_request(req, &mb) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let (max, start) = match (max_results(req), start_bound(req)) {
        (Ok(m), Ok(s)) => (m, s),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let all = matching_threads(&mb, &filter);
    let total = all.len();
    let mut page: Vec<&(OrderKey, String)> = all
        .iter()
        .filter(|(k, _)| match &start {
            std::ops::Bound::Excluded(s) => k > s,
            _ => true,
        })
        .take(max + 1)
        .collect();
    let next = if page.len() > max {
        page.truncate(max);
        page.last().map(|(k, _)| encode_token(k))
    } else {
        None
    };
    let threads: Vec<Value> = page
        .iter()
        .filter_map(|(_, tid)| {
            let t = mb.threads.get(tid)?;
            let last = t.messages.last().and_then(|id| mb.messages.get(id))?;
            Some(json!({
                "id": tid,
                "snippet": last.content.parsed().snippet,
                "historyId": t.history_id.to_string(),
            }))
        })
        .collect();
    let mut v = serde_json::Map::new();
    if !threads.is_empty() {
        v.insert("threads".into(), Value::Array(threads));
    }
    if let Some(n) = next {
        v.insert("nextPageToken".into(), json!(n));
    }
    v.insert("resultSizeEstimate".into(), json!(total));
    ApiResponse::json(&Value::Object(v))
}

fn threads_get(state: &State, req: &ApiRequest, mailbox: &str, id: &str) -> ApiResponse {
    let format = match parse_format(req, Format::Full) {
        Ok(Format::Raw) => {
            return ApiResponse::bad_request("Invalid value at 'format' (raw)");
        }
        Ok(f) => f,
        Err(e) => return e,
    };
    let (history_id, messages) = {
        let Ok(mb) = state.read(mailbox) else {
            return ApiResponse::not_found();
        };
        let Some(t) = mb.threads.get(id) else {
            return ApiResponse::not_found();
        };
        let msgs: Vec<Message> = t
            .messages
            .iter()
            .filter_map(|m| mb.messages.get(m).cloned())
            .collect();
        (t.history_id, msgs)
    };
    let rendered: Vec<Value> = messages
        .iter()
        .map(|m| wire::message_json(state, m, &format))
        .collect();
    ApiResponse::json(&json!({
        "id": id,
        "historyId": history_id.to_string(),
        "messages": rendered,
    }))
}

fn history_list(state: &State, req: &ApiRequest, mailbox: &str, faults: &Faults) -> ApiResponse {
    let Some(start) = req.param("startHistoryId") else {
        return ApiResponse::bad_request("Missing required parameter: startHistoryId");
    };
    let Ok(start) = start.parse::<u64>() else {
        return ApiResponse::bad_request("Invalid value for startHistoryId");
    };
    let max = match max_results(req) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let after = match req.param("pageToken").filter(|t| !t.is_empty()) {
        Some(t) => match t.strip_prefix('h').and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => n,
            None => return ApiResponse::bad_request("Invalid pageToken"),
        },
        None => start,
    };
    let types: Vec<String> = req
        .params_all("historyTypes")
        .iter()
        .flat_map(|t| t.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let label = req.param("labelId").map(str::to_string);
    let Ok(mb) = state.read(mailbox) else {
        return ApiResponse::not_found();
    };
    if start < mb.history_floor || after < mb.history_floor {
        return ApiResponse::not_found();
    }
    let current = mb.history_id.to_string();
    // Records are appended in id order: binary search the first one after `after`.
    let from = mb.history.partition_point(|r| r.id <= after);
    let remaining = &mb.history[from..];
    if !remaining.is_empty() && faults.empty_history_page_rate > 0.0 {
        let empty = state.chance(faults.empty_history_page_rate);
        if empty {
            state.limits.fault("emptyHistoryPage");
            return ApiResponse::json(&json!({
                "nextPageToken": format!("h{after}"),
                "historyId": current,
            }));
        }
    }
    let wanted = |r: &&crate::model::HistoryRecord| {
        let type_ok = types.is_empty()
            || types.iter().any(|t| {
                matches!(
                    (t.as_str(), &r.change),
                    ("messageAdded", Change::Added)
                        | ("messageDeleted", Change::Deleted)
                        | ("labelAdded", Change::LabelsAdded(_))
                        | ("labelRemoved", Change::LabelsRemoved(_))
                )
            });
        let label_ok = match &label {
            None => true,
            Some(l) => {
                r.message.labels.contains(l)
                    || matches!(&r.change, Change::LabelsAdded(ls) | Change::LabelsRemoved(ls) if ls.contains(l))
            }
        };
        type_ok && label_ok
    };
    let mut records = Vec::new();
    let mut last_seen = after;
    let mut next = None;
    for r in remaining {
        if records.len() == max {
            next = Some(format!("h{last_seen}"));
            break;
        }
        last_seen = r.id;
        if wanted(&r) {
            records.push(wire::history_json(r));
        }
    }
    let mut v = serde_json::Map::new();
    if !records.is_empty() {
        v.insert("history".into(), Value::Array(records));
    }
    if let Some(n) = next {
        v.insert("nextPageToken".into(), json!(n));
    }
    v.insert("historyId".into(), json!(current));
    ApiResponse::json(&Value::Object(v))
}
