//! The first thing every run does (backfill, sync, the worker's): list the
//! mailbox's labels (labels.list, 1 quota unit) and bring `mailbox_labels`
//! up to date in one fenced transaction with a ledger event per label
//! created, renamed, changed or deleted in Gmail. Export, show and status
//! then name labels as Gmail does now; the ledger says when each name came.
//! The listing is kept on the run, so a backfill that reads labels by
//! listing each one does not pay for labels.list twice.

use ledger::{EventType, NewEvent, Subject};
use serde_json::json;
use tracing::{info, warn};

use super::run::{Run, Stage};
use super::{Engine, EngineError};
use crate::domain::{LabelChange, LabelChangeKind, MailboxLabel, StoredLabel, label_changes};

impl Engine {
    /// Lists the mailbox's labels and records what changed since the last run.
    pub(crate) async fn refresh_labels(&self, run: &Run) -> Result<(), EngineError> {
        let listed = run
            .timed(Stage::List, self.gmail.labels(run.mailbox()))
            .await?;
        run.set_labels(listed.clone());
        let (labels, refused): (Vec<gmail::Label>, Vec<gmail::Label>) =
            listed.into_iter().partition(|l| gmail::is_label_id(&l.id));
        for l in &refused {
            // Never on a message either (commit refuses such label updates).
            warn!(label = %gmail::printable_id(&l.id), "labels.list gave a label id that is not data; left out");
        }
        let labels: Vec<MailboxLabel> = labels.into_iter().map(MailboxLabel::from).collect();
        // Most runs find the labels as they were: then no write transaction
        // (on SQLite, no wait for the one writer). What changed is decided
        // again inside the fenced transaction, which alone writes.
        let stored = self
            .riding_out("read labels", || async {
                Ok(self.repo.mailbox_labels(&[run.mailbox_id()]).await?)
            })
            .await?;
        let stored: Vec<StoredLabel> = stored
            .into_iter()
            .map(|r| StoredLabel {
                label: r.label,
                deleted: r.deleted,
            })
            .collect();
        if label_changes(&stored, &labels).is_empty() {
            return Ok(());
        }
        let changes = self
            .riding_out("refresh labels", || self.write_labels(run, &labels))
            .await?;
        if !changes.is_empty() {
            info!(changes = changes.len(), "labels changed in Gmail");
        }
        run.count(|t| t.label_changes.extend(changes));
        Ok(())
    }

    async fn write_labels(
        &self,
        run: &Run,
        labels: &[MailboxLabel],
    ) -> Result<Vec<LabelChange>, EngineError> {
        let mut tx = self.repo.begin(run.fence()).await?;
        let changes = tx.refresh_labels(labels).await?;
        let events: Vec<NewEvent> = changes.iter().map(label_event).collect();
        if !events.is_empty() {
            tx.append_events(&events).await?;
        }
        tx.commit().await?;
        Ok(changes)
    }
}

/// The ledger event of one label change: the label as it is now (as it was,
/// for a deletion), and the name it had before a rename.
fn label_event(change: &LabelChange) -> NewEvent {
    let event_type = match change.kind {
        LabelChangeKind::Created => EventType::LabelCreated,
        LabelChangeKind::Renamed { .. } => EventType::LabelRenamed,
        LabelChangeKind::Updated => EventType::LabelUpdated,
        LabelChangeKind::Deleted => EventType::LabelDeleted,
    };
    let mut payload = json!({ "label": change.label });
    if let LabelChangeKind::Renamed { from } = &change.kind {
        payload["previous_name"] = json!(from);
    }
    NewEvent::new(event_type, Subject::Label(change.id.clone()), payload)
}
