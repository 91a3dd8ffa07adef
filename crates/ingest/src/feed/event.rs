//! One change-feed event as a consumer sees it: schema version 1, documented
//! in the README ("Change feed"). A field is added in a compatible version;
//! a field removed or changed in meaning makes version 2.

use chrono::{DateTime, Utc};
use ledger::{EventType, Subject};
use serde::Serialize;

use crate::repo::FeedRow;

/// The version every event carries in `schema`.
pub const SCHEMA_VERSION: u32 = 1;

/// A ledger event with what a consumer needs to act on it without a second
/// query. Optional facts are `null` where the event has none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedEvent {
    pub schema: u32,
    /// `<org>/<mailbox>/<seq>`: unique per event, the same on every delivery.
    pub idempotency_key: String,
    pub org: String,
    /// The mailbox's address.
    pub mailbox: String,
    /// Position in the mailbox's ledger: 1, 2, 3, … without gaps.
    pub seq: i64,
    /// The run (sync_runs id) that recorded it.
    pub run: i64,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The ledger subject key (`message:<id>`, `message:<id>/part:<path>`,
    /// `thread:<id>`, `run:<id>`, `blob:<sha256>`).
    pub subject: String,
    /// When it committed (the database clock).
    pub committed_at: DateTime<Utc>,
    pub message_id: Option<String>,
    pub thread_id: Option<String>,
    /// The MIME part path of an `attachment.saved`.
    pub part: Option<String>,
    /// The message's labels as the event recorded them (`message.ingested`,
    /// `labels.changed`), Gmail's ids and their names.
    pub label_ids: Option<Vec<String>>,
    pub labels: Option<Vec<String>>,
    /// The raw RFC 822 message: its sha256 and its key in the store.
    pub raw_sha256: Option<String>,
    pub raw_store_key: Option<String>,
    /// An `attachment.saved` part's blob: sha256 and store key.
    pub part_sha256: Option<String>,
    pub part_store_key: Option<String>,
    /// The message was deleted in Gmail (`message.deleted`).
    pub deleted: bool,
    /// The event's link in the mailbox's hash chain (`verify` checks it).
    pub hash: String,
    /// The ledger payload as recorded (type-specific; see the README).
    pub payload: serde_json::Value,
    #[serde(skip)]
    pub mailbox_id: i64,
}

impl FeedEvent {
    /// `row` of `org`'s mailbox `email`, with `names` resolving its label ids.
    pub fn new(
        org: &str,
        email: &str,
        row: FeedRow,
        names: &std::collections::HashMap<String, String>,
    ) -> FeedEvent {
        let subject = row.subject_key.parse::<Subject>().ok();
        let message_id = subject
            .as_ref()
            .and_then(|s| s.message_id())
            .map(str::to_owned);
        let (part, thread) = match &subject {
            Some(Subject::Part { part, .. }) => (Some(part.clone()), None),
            Some(Subject::Thread(id)) => (None, Some(id.clone())),
            _ => (None, None),
        };
        let label_ids: Option<Vec<String>> = row
            .payload
            .get("label_ids")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let labels = label_ids.as_ref().map(|ids| {
            ids.iter()
                .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
                .collect()
        });
        let part_sha256 = (row.event_type == EventType::AttachmentSaved)
            .then(|| row.payload.get("sha256").and_then(|v| v.as_str()))
            .flatten()
            .map(str::to_owned);
        FeedEvent {
            schema: SCHEMA_VERSION,
            idempotency_key: format!("{org}/{email}/{}", row.seq),
            org: org.to_owned(),
            mailbox: email.to_owned(),
            seq: row.seq,
            run: row.run_id,
            event_type: row.event_type,
            subject: row.subject_key,
            committed_at: row.created_at,
            message_id,
            thread_id: thread.or(row.thread_id),
            part,
            label_ids,
            labels,
            raw_sha256: row.raw_sha256,
            raw_store_key: row.raw_store_key,
            part_sha256,
            part_store_key: row.part_store_key,
            deleted: row.event_type == EventType::MessageDeleted,
            hash: row.hash,
            payload: row.payload,
            mailbox_id: row.mailbox_id,
        }
    }

    /// One line for a terminal (`changes` without `--json`).
    pub fn text_line(&self) -> String {
        format!(
            "{} {} #{} {} {}",
            self.committed_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.mailbox,
            self.seq,
            self.event_type,
            self.subject
        )
    }
}
