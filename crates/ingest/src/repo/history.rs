//! A mailbox's past, as its ledger tells it: the message events a replay
//! needs, the state they add up to at an instant (`show --as-of`), and a
//! stored row that disagrees with the event that recorded it.
//!
//! The state is computed from the events, never from the rows: rows hold only
//! the present, the ledger holds every change with the time it committed.

use std::collections::BTreeMap;

use async_trait::async_trait;

use chrono::{DateTime, Utc};
use ledger::{EventType, Subject};
use serde::Serialize;

use super::RepoError;

/// One message event of the ledger, as a replay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    pub seq: i64,
    pub event_type: EventType,
    /// The event's subject key (`Subject::Message`).
    pub subject_key: String,
    /// The label set the event recorded: `message.ingested` (since the
    /// ledger records it) and `labels.changed`.
    pub label_ids: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

/// A live message at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageState {
    pub id: String,
    /// `None` when the events up to then did not record the labels (events
    /// written before `message.ingested` carried them).
    pub label_ids: Option<Vec<String>>,
}

/// What the ledger says the mailbox held at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailboxState {
    pub as_of: DateTime<Utc>,
    /// The last message event replayed (`None`: none by then).
    pub last_seq: Option<i64>,
    pub messages: Vec<MessageState>,
}

impl MailboxState {
    /// Replays `events` (chain order, all at or before `as_of`): an ingest
    /// makes a message live with its labels, a label change replaces them, a
    /// delete removes it (a later ingest, a message seen again, brings it back).
    pub fn replay(as_of: DateTime<Utc>, events: &[MessageEvent]) -> MailboxState {
        let mut live: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        let mut last_seq = None;
        for event in events {
            let Ok(subject) = event.subject_key.parse::<Subject>() else {
                continue;
            };
            let Some(id) = subject.message_id() else {
                continue;
            };
            last_seq = Some(event.seq);
            match event.event_type {
                EventType::MessageIngested => {
                    let previous = live.remove(id).flatten();
                    live.insert(id.to_owned(), event.label_ids.clone().or(previous));
                }
                EventType::LabelsChanged => {
                    if let Some(labels) = live.get_mut(id) {
                        *labels = event.label_ids.clone();
                    }
                }
                EventType::MessageDeleted => {
                    live.remove(id);
                }
                _ => {}
            }
        }
        MailboxState {
            as_of,
            last_seq,
            messages: live
                .into_iter()
                .map(|(id, label_ids)| MessageState {
                    id,
                    label_ids: label_ids.map(|mut l| {
                        l.sort();
                        l
                    }),
                })
                .collect(),
        }
    }
}

/// A stored message whose raw sha256 is not the one its `message.ingested`
/// event recorded: the row was changed behind the ledger's back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowEventMismatch {
    pub provider_message_id: String,
    pub row_raw_sha256: String,
    pub event_raw_sha256: String,
}

/// The anchored ledger and the mailbox's past it tells.
#[async_trait]
pub trait LedgerHistory: Send + Sync {
    /// The last event of the mailbox's chain.
    async fn ledger_head(&self, mailbox_id: i64) -> Result<Option<ledger::ChainHead>, RepoError>;
    /// The stored hash of the mailbox's event at `seq`, if there is one.
    async fn ledger_hash_at(&self, mailbox_id: i64, seq: i64) -> Result<Option<String>, RepoError>;
    /// Stored messages whose raw bytes differ from what their latest
    /// `message.ingested` event recorded (up to `limit`).
    async fn rows_disagreeing_with_ledger(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> Result<Vec<RowEventMismatch>, RepoError>;
    /// The mailbox's message events (ingested, labels changed, deleted)
    /// recorded at or before `at`, in chain order.
    async fn message_events_until(
        &self,
        mailbox_id: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<MessageEvent>, RepoError>;
}

/// A message event row as both backends read it: (seq, type, subject,
/// label ids as JSON text, created_at).
pub(crate) type EventRow = (i64, String, String, Option<String>, DateTime<Utc>);

pub(crate) fn history_event(
    (seq, event_type, subject_key, labels, created_at): EventRow,
) -> Result<MessageEvent, RepoError> {
    let event_type = event_type.parse().map_err(|_| {
        RepoError::Corrupt(format!("ledger event {seq}: unknown type {event_type:?}"))
    })?;
    let label_ids = labels
        .map(|l| serde_json::from_str(&l))
        .transpose()
        .map_err(|e| RepoError::Corrupt(format!("ledger event {seq}: label_ids: {e}")))?;
    Ok(MessageEvent {
        seq,
        event_type,
        subject_key,
        label_ids,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ev(seq: i64, event_type: EventType, id: &str, labels: Option<&[&str]>) -> MessageEvent {
        MessageEvent {
            seq,
            event_type,
            subject_key: Subject::Message(id.into()).to_string(),
            label_ids: labels.map(|l| l.iter().map(|s| s.to_string()).collect()),
            created_at: Utc.timestamp_opt(1_700_000_000 + seq, 0).unwrap(),
        }
    }

    #[test]
    fn a_replay_follows_ingests_relabels_deletes_and_returns() {
        let events = [
            ev(
                1,
                EventType::MessageIngested,
                "a",
                Some(&["INBOX", "UNREAD"]),
            ),
            ev(2, EventType::MessageIngested, "b", Some(&["INBOX"])),
            ev(3, EventType::LabelsChanged, "a", Some(&["INBOX"])),
            ev(4, EventType::MessageDeleted, "b", None),
            ev(5, EventType::MessageIngested, "c", None),
            ev(6, EventType::MessageDeleted, "a", None),
            ev(7, EventType::MessageIngested, "a", Some(&["TRASH"])),
        ];
        let at = Utc::now();
        let state = |n: usize| MailboxState::replay(at, &events[..n]);
        let ids = |s: &MailboxState| s.messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&state(2)), ["a", "b"]);
        assert_eq!(
            state(2).messages[0].label_ids,
            Some(vec!["INBOX".to_string(), "UNREAD".to_string()])
        );
        assert_eq!(
            state(3).messages[0].label_ids,
            Some(vec!["INBOX".to_string()])
        );
        assert_eq!(ids(&state(4)), ["a"]);
        assert_eq!(state(5).messages[1].label_ids, None, "labels not recorded");
        assert_eq!(ids(&state(6)), ["c"]);
        assert_eq!(ids(&state(7)), ["a", "c"], "seen again after a delete");
        assert_eq!(state(7).last_seq, Some(7));
        assert_eq!(state(0).last_seq, None);
    }
}
