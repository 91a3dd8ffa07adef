//! Tolerant mirrors of Gmail's JSON and the conversion to this crate's types.
//! Two ways in: google-gmail1's decoded structs (the normal path), or the raw body when
//! google-gmail1 refused it (unpadded base64, an int64 sent as a number). Both land in the
//! `J*` structs, and one conversion validates them: int64-as-string fields become u64/i64
//! with a typed error naming the field, base64url is decoded padded or not.

use google_gmail1::api;
use serde::Deserialize;

use crate::GmailError;
use crate::b64::decode_base64url;
use crate::types::*;

/// An int64 field: Gmail sends a string; numbers are tolerated.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Int64 {
    U(u64),
    I(i64),
    S(String),
}

/// Base64url text from the wire, or bytes google-gmail1 already decoded.
#[derive(Debug, Clone)]
pub(crate) enum B64 {
    Text(String),
    Bytes(Vec<u8>),
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(B64::Text)
    }
}

fn decode_err(method: &'static str, message: String) -> GmailError {
    GmailError::Decode { method, message }
}

fn u64_field(method: &'static str, field: &str, v: Option<&Int64>) -> Result<u64, GmailError> {
    match v {
        Some(Int64::U(n)) => Ok(*n),
        Some(Int64::I(n)) => {
            u64::try_from(*n).map_err(|_| decode_err(method, format!("{field}: {n} is negative")))
        }
        Some(Int64::S(s)) => s.trim().parse::<u64>().map_err(|_| {
            decode_err(
                method,
                format!("{field}: {s:?} is not an unsigned 64-bit integer"),
            )
        }),
        None => Err(decode_err(method, format!("{field} is missing"))),
    }
}

fn i64_field(method: &'static str, field: &str, v: Option<&Int64>) -> Result<i64, GmailError> {
    match v {
        Some(Int64::I(n)) => Ok(*n),
        Some(Int64::U(n)) => {
            i64::try_from(*n).map_err(|_| decode_err(method, format!("{field}: {n} overflows i64")))
        }
        Some(Int64::S(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| decode_err(method, format!("{field}: {s:?} is not a 64-bit integer"))),
        None => Err(decode_err(method, format!("{field} is missing"))),
    }
}

fn required(method: &'static str, field: &str, v: Option<String>) -> Result<String, GmailError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| decode_err(method, format!("{field} is missing")))
}

// ---------------------------------------------------------------- JSON mirrors

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JProfile {
    email_address: Option<String>,
    history_id: Option<Int64>,
    messages_total: Option<Int64>,
    threads_total: Option<Int64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JMessage {
    id: Option<String>,
    thread_id: Option<String>,
    label_ids: Option<Vec<String>>,
    history_id: Option<Int64>,
    internal_date: Option<Int64>,
    size_estimate: Option<Int64>,
    raw: Option<B64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JThread {
    id: Option<String>,
    snippet: Option<String>,
    history_id: Option<Int64>,
    messages: Option<Vec<JMessage>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JThreadList {
    threads: Option<Vec<JThread>>,
    next_page_token: Option<String>,
    result_size_estimate: Option<Int64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JMessageList {
    messages: Option<Vec<JMessage>>,
    next_page_token: Option<String>,
    result_size_estimate: Option<Int64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JLabel {
    id: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    label_type: Option<String>,
    color: Option<JLabelColor>,
    message_list_visibility: Option<String>,
    label_list_visibility: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JLabelColor {
    text_color: Option<String>,
    background_color: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JLabelList {
    labels: Option<Vec<JLabel>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JMessageHolder {
    message: Option<JMessage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JLabelChange {
    message: Option<JMessage>,
    label_ids: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JHistory {
    id: Option<Int64>,
    messages_added: Option<Vec<JMessageHolder>>,
    messages_deleted: Option<Vec<JMessageHolder>>,
    labels_added: Option<Vec<JLabelChange>>,
    labels_removed: Option<Vec<JLabelChange>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JHistoryList {
    history: Option<Vec<JHistory>>,
    history_id: Option<Int64>,
    next_page_token: Option<String>,
}

// ------------------------------------------------ google-gmail1 structs → mirrors

impl From<api::Profile> for JProfile {
    fn from(p: api::Profile) -> Self {
        JProfile {
            email_address: p.email_address,
            history_id: p.history_id.map(Int64::U),
            messages_total: p.messages_total.map(|n| Int64::I(n.into())),
            threads_total: p.threads_total.map(|n| Int64::I(n.into())),
        }
    }
}

impl From<api::Message> for JMessage {
    fn from(m: api::Message) -> Self {
        JMessage {
            id: m.id,
            thread_id: m.thread_id,
            label_ids: m.label_ids,
            history_id: m.history_id.map(Int64::U),
            internal_date: m.internal_date.map(Int64::I),
            size_estimate: m.size_estimate.map(|n| Int64::I(n.into())),
            raw: m.raw.map(B64::Bytes),
        }
    }
}

impl From<api::Thread> for JThread {
    fn from(t: api::Thread) -> Self {
        JThread {
            id: t.id,
            snippet: t.snippet,
            history_id: t.history_id.map(Int64::U),
            messages: t.messages.map(|v| v.into_iter().map(Into::into).collect()),
        }
    }
}

impl From<api::ListThreadsResponse> for JThreadList {
    fn from(r: api::ListThreadsResponse) -> Self {
        JThreadList {
            threads: r.threads.map(|v| v.into_iter().map(Into::into).collect()),
            next_page_token: r.next_page_token,
            result_size_estimate: r.result_size_estimate.map(|n| Int64::U(n.into())),
        }
    }
}

impl From<api::ListMessagesResponse> for JMessageList {
    fn from(r: api::ListMessagesResponse) -> Self {
        JMessageList {
            messages: r.messages.map(|v| v.into_iter().map(Into::into).collect()),
            next_page_token: r.next_page_token,
            result_size_estimate: r.result_size_estimate.map(|n| Int64::U(n.into())),
        }
    }
}

impl From<api::ListLabelsResponse> for JLabelList {
    fn from(r: api::ListLabelsResponse) -> Self {
        JLabelList {
            labels: r.labels.map(|v| {
                v.into_iter()
                    .map(|l| JLabel {
                        id: l.id,
                        name: l.name,
                        label_type: l.type_,
                        color: l.color.map(|c| JLabelColor {
                            text_color: c.text_color,
                            background_color: c.background_color,
                        }),
                        message_list_visibility: l.message_list_visibility,
                        label_list_visibility: l.label_list_visibility,
                    })
                    .collect()
            }),
        }
    }
}

fn holder(m: Option<api::Message>) -> JMessageHolder {
    JMessageHolder {
        message: m.map(Into::into),
    }
}

impl From<api::History> for JHistory {
    fn from(h: api::History) -> Self {
        JHistory {
            id: h.id.map(Int64::U),
            messages_added: h
                .messages_added
                .map(|v| v.into_iter().map(|a| holder(a.message)).collect()),
            messages_deleted: h
                .messages_deleted
                .map(|v| v.into_iter().map(|a| holder(a.message)).collect()),
            labels_added: h.labels_added.map(|v| {
                v.into_iter()
                    .map(|a| JLabelChange {
                        message: a.message.map(Into::into),
                        label_ids: a.label_ids,
                    })
                    .collect()
            }),
            labels_removed: h.labels_removed.map(|v| {
                v.into_iter()
                    .map(|a| JLabelChange {
                        message: a.message.map(Into::into),
                        label_ids: a.label_ids,
                    })
                    .collect()
            }),
        }
    }
}

impl From<api::ListHistoryResponse> for JHistoryList {
    fn from(r: api::ListHistoryResponse) -> Self {
        JHistoryList {
            history: r.history.map(|v| v.into_iter().map(Into::into).collect()),
            history_id: r.history_id.map(Int64::U),
            next_page_token: r.next_page_token,
        }
    }
}

// ------------------------------------------------------ mirrors → public types

fn count(method: &'static str, field: &str, v: Option<&Int64>) -> Result<u64, GmailError> {
    match v {
        None => Ok(0),
        some => u64_field(method, field, some),
    }
}

fn page_token(t: Option<String>) -> Option<String> {
    t.filter(|t| !t.is_empty())
}

impl JProfile {
    pub(crate) fn into_profile(self, method: &'static str) -> Result<Profile, GmailError> {
        Ok(Profile {
            history_id: u64_field(method, "historyId", self.history_id.as_ref())?,
            messages_total: count(method, "messagesTotal", self.messages_total.as_ref())?,
            threads_total: count(method, "threadsTotal", self.threads_total.as_ref())?,
            email_address: required(method, "emailAddress", self.email_address)?,
        })
    }
}

impl JMessage {
    fn into_ref(self, method: &'static str) -> Result<MessageRef, GmailError> {
        Ok(MessageRef {
            id: required(method, "message id", self.id)?,
            thread_id: required(method, "threadId", self.thread_id)?,
        })
    }

    fn into_minimal_ref(self, method: &'static str) -> Result<MessageMinimalRef, GmailError> {
        Ok(MessageMinimalRef {
            id: required(method, "message id", self.id)?,
            thread_id: required(method, "threadId", self.thread_id)?,
            label_ids: self.label_ids.unwrap_or_default(),
        })
    }

    pub(crate) fn into_meta(self, method: &'static str) -> Result<MessageMeta, GmailError> {
        Ok(MessageMeta {
            history_id: u64_field(method, "historyId", self.history_id.as_ref())?,
            internal_date_ms: i64_field(method, "internalDate", self.internal_date.as_ref())?,
            size_estimate: count(method, "sizeEstimate", self.size_estimate.as_ref())?,
            id: required(method, "message id", self.id)?,
            thread_id: required(method, "threadId", self.thread_id)?,
            label_ids: self.label_ids.unwrap_or_default(),
        })
    }

    pub(crate) fn into_raw(mut self, method: &'static str) -> Result<RawMessage, GmailError> {
        let raw = match self.raw.take() {
            Some(B64::Bytes(b)) => b,
            Some(B64::Text(t)) => decode_base64url(&t)
                .map_err(|e| decode_err(method, format!("raw: invalid base64url: {e}")))?,
            None => return Err(decode_err(method, "raw is missing".into())),
        };
        Ok(RawMessage {
            meta: self.into_meta(method)?,
            raw: bytes::Bytes::from(raw),
        })
    }
}

impl JThread {
    pub(crate) fn into_minimal(self, method: &'static str) -> Result<ThreadMinimal, GmailError> {
        let messages = self
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.into_meta(method))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ThreadMinimal {
            history_id: u64_field(method, "historyId", self.history_id.as_ref())?,
            id: required(method, "thread id", self.id)?,
            messages,
        })
    }
}

impl JThreadList {
    pub(crate) fn into_page(self, method: &'static str) -> Result<ThreadPage, GmailError> {
        let threads = self
            .threads
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                Ok(ThreadRef {
                    history_id: u64_field(method, "historyId", t.history_id.as_ref())?,
                    id: required(method, "thread id", t.id)?,
                    snippet: t.snippet.unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, GmailError>>()?;
        Ok(ThreadPage {
            threads,
            result_size_estimate: size_estimate(method, self.result_size_estimate.as_ref())?,
            next_page_token: page_token(self.next_page_token),
        })
    }
}

fn size_estimate(method: &'static str, v: Option<&Int64>) -> Result<u32, GmailError> {
    let n = count(method, "resultSizeEstimate", v)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

impl JMessageList {
    pub(crate) fn into_page(self, method: &'static str) -> Result<MessagePage, GmailError> {
        let messages = self
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.into_ref(method))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MessagePage {
            messages,
            result_size_estimate: size_estimate(method, self.result_size_estimate.as_ref())?,
            next_page_token: page_token(self.next_page_token),
        })
    }
}

fn label_changes(
    method: &'static str,
    v: Option<Vec<JLabelChange>>,
) -> Result<Vec<LabelChange>, GmailError> {
    v.unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.message.map(|m| (m, c.label_ids)))
        .map(|(m, changed)| {
            let m = m.into_minimal_ref(method)?;
            Ok(LabelChange {
                id: m.id,
                thread_id: m.thread_id,
                label_ids: changed.unwrap_or_default(),
                message_label_ids: m.label_ids,
            })
        })
        .collect()
}

impl JLabelList {
    pub(crate) fn into_labels(self, method: &'static str) -> Result<Vec<Label>, GmailError> {
        self.labels
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                let id = required(method, "label id", l.id)?;
                let color = l.color.unwrap_or_default();
                Ok(Label {
                    name: l.name.unwrap_or_else(|| id.clone()),
                    text_color: color.text_color,
                    background_color: color.background_color,
                    message_list_visibility: l.message_list_visibility,
                    label_list_visibility: l.label_list_visibility,
                    // Gmail names only its own labels "system"; anything else is the user's.
                    label_type: match l.label_type.as_deref() {
                        Some("system") => LabelType::System,
                        _ => LabelType::User,
                    },
                    id,
                })
            })
            .collect()
    }
}

impl JHistoryList {
    pub(crate) fn into_page(self, method: &'static str) -> Result<HistoryPage, GmailError> {
        let records = self
            .history
            .unwrap_or_default()
            .into_iter()
            .map(|h| {
                Ok(HistoryRecord {
                    id: u64_field(method, "history id", h.id.as_ref())?,
                    messages_added: h
                        .messages_added
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|a| a.message)
                        .map(|m| m.into_minimal_ref(method))
                        .collect::<Result<_, _>>()?,
                    messages_deleted: h
                        .messages_deleted
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|a| a.message)
                        .map(|m| m.into_ref(method))
                        .collect::<Result<_, _>>()?,
                    labels_added: label_changes(method, h.labels_added)?,
                    labels_removed: label_changes(method, h.labels_removed)?,
                })
            })
            .collect::<Result<Vec<_>, GmailError>>()?;
        Ok(HistoryPage {
            records,
            history_id: u64_field(method, "historyId", self.history_id.as_ref())?,
            next_page_token: page_token(self.next_page_token),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_body_with_unpadded_base64_and_string_ints() {
        // "hello!!" is 7 bytes: unpadded base64url needs one '=' google-gmail1 insists on.
        let body = r#"{"id":"m1","threadId":"t1","labelIds":["INBOX"],"historyId":"123",
            "internalDate":"1700000000000","sizeEstimate":42,"raw":"aGVsbG8hIQ"}"#;
        let j: JMessage = serde_json::from_str(body).expect("json");
        let m = j.into_raw("messages.get").expect("raw");
        assert_eq!(&m.raw[..], b"hello!!");
        assert_eq!(
            m.meta,
            MessageMeta {
                id: "m1".into(),
                thread_id: "t1".into(),
                label_ids: vec!["INBOX".into()],
                internal_date_ms: 1_700_000_000_000,
                history_id: 123,
                size_estimate: 42,
            }
        );
    }

    #[test]
    fn labels_decode_with_their_type() {
        let j: JLabelList = serde_json::from_str(
            r##"{"labels":[{"id":"INBOX","name":"INBOX","type":"system"},
                          {"id":"Label_7","name":"work/2026","type":"user",
                           "color":{"textColor":"#000000","backgroundColor":"#fad165"},
                           "messageListVisibility":"hide","labelListVisibility":"labelShowIfUnread"},
                          {"id":"Label_8"}]}"##,
        )
        .expect("json");
        let labels = j.into_labels("labels.list").expect("labels");
        assert_eq!(labels[0].label_type, LabelType::System);
        assert_eq!(
            (labels[1].id.as_str(), labels[1].name.as_str()),
            ("Label_7", "work/2026")
        );
        assert_eq!(labels[1].background_color.as_deref(), Some("#fad165"));
        assert_eq!(labels[1].text_color.as_deref(), Some("#000000"));
        assert_eq!(labels[1].message_list_visibility.as_deref(), Some("hide"));
        assert_eq!(
            labels[1].label_list_visibility.as_deref(),
            Some("labelShowIfUnread")
        );
        assert_eq!(labels[0].background_color, None);
        assert_eq!(
            labels[2].name, "Label_8",
            "a label without a name is named by its id"
        );
        assert_eq!(labels[2].label_type, LabelType::User);
        let missing: JLabelList = serde_json::from_str(r#"{"labels":[{"name":"x"}]}"#).unwrap();
        assert!(matches!(
            missing.into_labels("labels.list"),
            Err(GmailError::Decode { .. })
        ));
        let none: JLabelList = serde_json::from_str("{}").unwrap();
        assert!(none.into_labels("labels.list").unwrap().is_empty());
    }

    #[test]
    fn int64_fields_give_typed_errors() {
        let j: JMessage = serde_json::from_str(
            r#"{"id":"m1","threadId":"t1","historyId":"12x","internalDate":"5"}"#,
        )
        .expect("json");
        match j.into_meta("messages.get") {
            Err(GmailError::Decode { method, message }) => {
                assert_eq!(method, "messages.get");
                assert!(message.contains("historyId"), "{message}");
            }
            other => panic!("expected Decode, got {other:?}"),
        }
        let j: JMessage =
            serde_json::from_str(r#"{"id":"m1","threadId":"t1","historyId":7,"internalDate":-1}"#)
                .expect("json");
        let m = j.into_meta("messages.get").expect("numbers tolerated");
        assert_eq!((m.history_id, m.internal_date_ms), (7, -1));
        let j: JMessage = serde_json::from_str(
            r#"{"id":"m1","threadId":"t1","historyId":"-3","internalDate":"1"}"#,
        )
        .expect("json");
        assert!(matches!(
            j.into_meta("messages.get"),
            Err(GmailError::Decode { .. })
        ));
    }

    #[test]
    fn history_page_shapes() {
        let body = r#"{"historyId":"99","nextPageToken":"p2","history":[
            {"id":"90","messagesAdded":[{"message":{"id":"a","threadId":"ta","labelIds":["INBOX"]}}]},
            {"id":"91","messagesDeleted":[{"message":{"id":"b","threadId":"tb"}}],
             "labelsAdded":[{"message":{"id":"c","threadId":"tc","labelIds":["INBOX","STARRED"]},"labelIds":["STARRED"]}],
             "labelsRemoved":[{"message":{"id":"d","threadId":"td","labelIds":[]},"labelIds":["UNREAD"]}]}]}"#;
        let j: JHistoryList = serde_json::from_str(body).expect("json");
        let p = j.into_page("history.list").expect("page");
        assert_eq!(p.history_id, 99);
        assert_eq!(p.next_page_token.as_deref(), Some("p2"));
        assert_eq!(p.records.len(), 2);
        assert_eq!(
            p.records[0].messages_added[0].label_ids,
            vec!["INBOX".to_string()]
        );
        assert_eq!(p.records[1].messages_deleted[0].id, "b");
        assert_eq!(
            p.records[1].labels_added[0].label_ids,
            vec!["STARRED".to_string()]
        );
        assert_eq!(p.records[1].labels_added[0].message_label_ids.len(), 2);
        assert_eq!(
            p.records[1].labels_removed[0].label_ids,
            vec!["UNREAD".to_string()]
        );
        // An empty page with a token is a valid page.
        let j: JHistoryList =
            serde_json::from_str(r#"{"historyId":"5","nextPageToken":"x"}"#).expect("json");
        let p = j.into_page("history.list").expect("page");
        assert!(p.records.is_empty());
        assert_eq!(p.next_page_token.as_deref(), Some("x"));
    }
}
