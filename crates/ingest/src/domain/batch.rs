//! The batch row types: what a run asks the repository to store in one
//! fenced transaction (blobs, threads, messages, attachments, label updates),
//! backend-neutral and free of SQL.
//!
//! Each type carries its natural key (docs/design.md) plus the columns that may
//! change between fetches. Serialised field names match the column names the
//! Postgres statements read with `jsonb_to_recordset`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::mime::Address;

/// A stored object: natural key `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobUpsert {
    /// Lowercase hex sha256 of the bytes the store wrote.
    pub sha256: String,
    pub size: i64,
    pub storage_key: String,
}

/// A Gmail thread: natural key `(mailbox_id, provider_thread_id)`.
///
/// Subject, message count and first/last message times are not set here: they
/// are derived from the stored messages by `refresh_threads`, so backfill and
/// sync agree on what they mean whatever each of them saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadUpsert {
    pub mailbox_id: i64,
    pub provider_thread_id: String,
    /// Gmail's thread historyId as listed, or `None` when not known to be
    /// current. Written in the same transaction as the last of the thread's
    /// messages, so "stored == listed" really means every message of that
    /// thread state is stored.
    pub history_id: Option<i64>,
    /// Which of the thread's messages `history_id` vouches for.
    #[serde(flatten)]
    pub coverage: Coverage,
    /// `None` keeps the stored snippet.
    pub snippet: Option<String>,
}

/// The internalDate range `[since, until)` within which every in-scope message
/// of a thread was stored at its recorded historyId; `None` bounds are open.
/// A threads.get proves the whole thread; a first backfill, which learns a
/// thread's messages from messages.list, only its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    #[serde(rename = "complete_since")]
    pub since: Option<DateTime<Utc>>,
    #[serde(rename = "complete_until")]
    pub until: Option<DateTime<Utc>>,
}

impl Coverage {
    /// The whole thread.
    pub const WHOLE: Coverage = Coverage {
        since: None,
        until: None,
    };

    /// Whether every message a backfill of `[since, until)` wants is covered.
    pub fn covers(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| s <= since) && self.until.is_none_or(|u| u >= until)
    }
}

/// A Gmail message: natural key `(mailbox_id, provider_message_id)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageUpsert {
    pub mailbox_id: i64,
    /// Surrogate id of the `mail_threads` row.
    pub thread_id: i64,
    pub provider_message_id: String,
    pub provider_thread_id: String,
    pub rfc822_message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub subject: Option<String>,
    pub from_addrs: Vec<Address>,
    pub to_addrs: Vec<Address>,
    pub cc_addrs: Vec<Address>,
    pub bcc_addrs: Vec<Address>,
    pub reply_to_addrs: Vec<Address>,
    pub sent_at: Option<DateTime<Utc>>,
    pub internal_date: DateTime<Utc>,
    pub label_ids: Vec<String>,
    pub snippet: Option<String>,
    pub size_estimate: Option<i64>,
    pub history_id: Option<i64>,
    /// Bound as a `text[]` parameter beside the JSON batch, not serialised.
    #[serde(skip)]
    pub body_text: Option<String>,
    #[serde(skip)]
    pub body_html: Option<String>,
    pub raw_sha256: String,
    pub raw_size: i64,
}

/// An attachment or inline part: natural key `(message_id, part_id)`.
///
/// `part_id` is the MIME part path, never Gmail's attachmentId (which changes
/// on every fetch and so cannot identify anything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentUpsert {
    /// Surrogate id of the `mail_messages` row.
    pub message_id: i64,
    pub part_id: String,
    pub filename: Option<String>,
    pub mime_type: String,
    pub content_id: Option<String>,
    pub disposition: Option<String>,
    pub size: i64,
    pub sha256: String,
}

/// Labels of an already-stored message, as Gmail reports them now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelUpdate {
    pub provider_message_id: String,
    pub label_ids: Vec<String>,
    pub history_id: Option<i64>,
}
