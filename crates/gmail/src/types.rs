//! The typed values the client hands out: profile, list pages, minimal and raw messages,
//! history records, and the list query. Plain data; no I/O.

use serde::Serialize;

/// `users.getProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub email_address: String,
    /// The mailbox's current history id: take it *before* a backfill starts listing.
    pub history_id: u64,
    pub messages_total: u64,
    pub threads_total: u64,
}

/// A window and filters for `threads.list` / `messages.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Inclusive lower bound, epoch seconds (`after:A`).
    pub after: Option<i64>,
    /// Exclusive upper bound, epoch seconds (`before:B`).
    pub before: Option<i64>,
    pub include_spam_trash: bool,
    /// Only items carrying all of these label ids.
    pub label_ids: Vec<String>,
    /// Page size (Gmail caps it at 500).
    pub page_size: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            after: None,
            before: None,
            include_spam_trash: false,
            label_ids: Vec::new(),
            page_size: 500,
        }
    }
}

/// One thread as `threads.list` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadRef {
    pub id: String,
    pub snippet: String,
    /// Equal to the stored value ⇒ the thread has not changed since.
    pub history_id: u64,
}

/// One page of `threads.list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadPage {
    pub threads: Vec<ThreadRef>,
    pub result_size_estimate: u32,
    /// The token that fetched the *next* page (None on the last page).
    pub next_page_token: Option<String>,
}

/// A message id with its thread id (`messages.list`, `history.list` deletions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRef {
    pub id: String,
    pub thread_id: String,
}

/// One page of `messages.list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessagePage {
    pub messages: Vec<MessageRef>,
    pub result_size_estimate: u32,
    pub next_page_token: Option<String>,
}

/// One message without its body: `messages.get?format=minimal`, each message of
/// `threads.get?format=minimal`, and the metadata half of a raw fetch. One type for all three
/// so callers carry it from listing to storage without copying fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageMeta {
    pub id: String,
    pub thread_id: String,
    pub label_ids: Vec<String>,
    pub internal_date_ms: i64,
    pub history_id: u64,
    pub size_estimate: u64,
}

/// `threads.get?format=minimal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadMinimal {
    pub id: String,
    pub history_id: u64,
    pub messages: Vec<MessageMeta>,
}

/// `messages.get?format=raw`: the whole RFC 822 message, decoded from base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub meta: MessageMeta,
    pub raw: bytes::Bytes,
}

// Hand-written so a Debug print of a message does not dump megabytes of mail into logs.
impl std::fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMessage")
            .field("meta", &self.meta)
            .field("raw_len", &self.raw.len())
            .finish()
    }
}

/// One label of a mailbox (`labels.list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub id: String,
    pub name: String,
    pub label_type: LabelType,
    /// Gmail's colours of a user label (`#rrggbb`), when it has them.
    pub text_color: Option<String>,
    pub background_color: Option<String>,
    /// `show` | `hide`: messages with the label in the message list.
    pub message_list_visibility: Option<String>,
    /// `labelShow` | `labelShowIfUnread` | `labelHide`: the label in the label list.
    pub label_list_visibility: Option<String>,
}

/// Who owns a label: Gmail (INBOX, SPAM, CATEGORY_…) or the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelType {
    System,
    User,
}

/// A message added to the mailbox, as history reports it (ids and labels only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageMinimalRef {
    pub id: String,
    pub thread_id: String,
    pub label_ids: Vec<String>,
}

/// Labels added to or removed from one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelChange {
    pub id: String,
    pub thread_id: String,
    /// The labels that were added (or removed) by this change.
    pub label_ids: Vec<String>,
    /// The message's labels after the change, when Gmail includes them.
    pub message_label_ids: Vec<String>,
}

/// One `history.list` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRecord {
    pub id: u64,
    pub messages_added: Vec<MessageMinimalRef>,
    pub messages_deleted: Vec<MessageRef>,
    pub labels_added: Vec<LabelChange>,
    pub labels_removed: Vec<LabelChange>,
}

/// One page of `history.list`. Pages may carry no records yet have a next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryPage {
    pub records: Vec<HistoryRecord>,
    /// The mailbox's current history id at the time of this page.
    pub history_id: u64,
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_message_debug_shows_metadata_not_mail() {
        let m = RawMessage {
            meta: MessageMeta {
                id: "m1".into(),
                thread_id: "t1".into(),
                label_ids: vec!["INBOX".into()],
                internal_date_ms: 1,
                history_id: 2,
                size_estimate: 3,
            },
            raw: bytes::Bytes::from_static(b"Subject: private body"),
        };
        let text = format!("{m:?}");
        assert!(
            text.contains("\"m1\"") && text.contains("raw_len: 21"),
            "{text}"
        );
        assert!(!text.contains("private"), "{text}");
    }
}
