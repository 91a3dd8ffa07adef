//! Event types and the write/read models of a ledger event.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::LedgerError;
use crate::subject::{Subject, SubjectError};

/// What happened. The strings are the values the schema's CHECK constraint allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum EventType {
    SyncStarted,
    ThreadIngested,
    MessageIngested,
    AttachmentSaved,
    MessageSkipped,
    MessageDeleted,
    LabelsChanged,
    HistoryExpired,
    SyncCompleted,
    SyncFailed,
    SyncInterrupted,
    /// `mailingest gc` removed a stored object (of mail Gmail deleted long ago).
    BlobRemoved,
    /// A run found a label Gmail's labels.list had not listed before (subject `label:<id>`).
    LabelCreated,
    /// A label's name changed in Gmail.
    LabelRenamed,
    /// A label's type, colours or visibility changed in Gmail (its name did not).
    LabelUpdated,
    /// A label labels.list no longer lists: Gmail deleted it.
    LabelDeleted,
    /// `import --keep-unmatched` kept an archive entry that is no message of
    /// the mailbox (subject `blob:<sha256>`, the bytes it stored).
    OrphanKept,
}

impl EventType {
    /// Every variant, in declaration order.
    pub const ALL: [EventType; 17] = [
        EventType::SyncStarted,
        EventType::ThreadIngested,
        EventType::MessageIngested,
        EventType::AttachmentSaved,
        EventType::MessageSkipped,
        EventType::MessageDeleted,
        EventType::LabelsChanged,
        EventType::HistoryExpired,
        EventType::SyncCompleted,
        EventType::SyncFailed,
        EventType::SyncInterrupted,
        EventType::BlobRemoved,
        EventType::LabelCreated,
        EventType::LabelRenamed,
        EventType::LabelUpdated,
        EventType::LabelDeleted,
        EventType::OrphanKept,
    ];

    /// The terminal types, in the order the partial unique index lists them.
    pub const TERMINAL: [EventType; 3] = [
        EventType::SyncCompleted,
        EventType::SyncFailed,
        EventType::SyncInterrupted,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::SyncStarted => "sync.started",
            EventType::ThreadIngested => "thread.ingested",
            EventType::MessageIngested => "message.ingested",
            EventType::AttachmentSaved => "attachment.saved",
            EventType::MessageSkipped => "message.skipped",
            EventType::MessageDeleted => "message.deleted",
            EventType::LabelsChanged => "labels.changed",
            EventType::HistoryExpired => "history.expired",
            EventType::SyncCompleted => "sync.completed",
            EventType::SyncFailed => "sync.failed",
            EventType::SyncInterrupted => "sync.interrupted",
            EventType::BlobRemoved => "blob.removed",
            EventType::LabelCreated => "label.created",
            EventType::LabelRenamed => "label.renamed",
            EventType::LabelUpdated => "label.updated",
            EventType::LabelDeleted => "label.deleted",
            EventType::OrphanKept => "orphan.kept",
        }
    }

    /// A run ends with exactly one of these (one per run, enforced by the database).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            EventType::SyncCompleted | EventType::SyncFailed | EventType::SyncInterrupted
        )
    }

    /// The `sync_runs.status` a run ending with this event must have (terminal types only).
    pub const fn run_status(self) -> Option<&'static str> {
        match self {
            EventType::SyncCompleted => Some("completed"),
            EventType::SyncFailed => Some("failed"),
            EventType::SyncInterrupted => Some("interrupted"),
            _ => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| LedgerError::UnknownEventType(s.to_owned()))
    }
}

impl From<EventType> for &'static str {
    fn from(t: EventType) -> Self {
        t.as_str()
    }
}

impl TryFrom<String> for EventType {
    type Error = LedgerError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// An event to append. `subject` names what it is about (a run, a Gmail thread, message or
/// message part, a mailbox); it is stored as `subject_key = subject.to_string()`, and an
/// invalid subject (see [`Subject::validate`]) is refused by `append`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub subject: Subject,
    pub payload: serde_json::Value,
}

impl NewEvent {
    pub fn new(event_type: EventType, subject: Subject, payload: serde_json::Value) -> Self {
        NewEvent {
            event_type,
            subject,
            payload,
        }
    }
}

/// A stored event, as read back from `ledger_events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub mailbox_id: i64,
    pub seq: i64,
    pub run_id: i64,
    pub event_type: EventType,
    pub subject_key: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

impl Event {
    /// The stored `subject_key` parsed back into a [`Subject`]. Fails for keys no valid
    /// subject renders to (e.g. rows written before subjects were typed).
    pub fn subject(&self) -> Result<Subject, SubjectError> {
        self.subject_key.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_string() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().ok(), Some(t));
        }
        assert!("sync.finished".parse::<EventType>().is_err());
        assert!("SYNC.STARTED".parse::<EventType>().is_err());
    }

    #[test]
    fn terminal_types_are_exactly_the_three_run_endings() {
        let terminal: Vec<_> = EventType::ALL
            .into_iter()
            .filter(|t| t.is_terminal())
            .collect();
        assert_eq!(terminal, EventType::TERMINAL.to_vec());
        assert_eq!(EventType::SyncFailed.run_status(), Some("failed"));
        assert_eq!(EventType::MessageIngested.run_status(), None);
    }

    #[test]
    fn serde_uses_the_dotted_names() {
        let json = serde_json::to_string(&EventType::LabelsChanged).ok();
        assert_eq!(json.as_deref(), Some("\"labels.changed\""));
        let back: Result<EventType, _> = serde_json::from_str("\"history.expired\"");
        assert_eq!(back.ok(), Some(EventType::HistoryExpired));
    }
}
