//! The labels of imported mail, when the mailbox already has a history cursor.
//!
//! An import stores the labels its file names, which are as old as the file.
//! In a mailbox without a cursor the first backfill replaces them (it learns
//! labels by listing each label, `label_source.rs`). A mailbox with a cursor
//! is different: its runs trust every stored label set to be no older than
//! the cursor and only replay history since it, so a file's labels from
//! before the cursor would stay for ever. An import into such a mailbox
//! therefore asks Gmail for the current labels of what it stored before its
//! run ends: one messages.list per label (the run's labels.list names them),
//! SPAM and TRASH included, 5 units per 500 ids. Read after the cursor was
//! taken, they satisfy what history replay assumes of stored labels.

use std::collections::HashMap;

use futures::StreamExt;
use gmail::ListQuery;
use tracing::info;

use super::commit::Batch;
use super::run::{Run, Stage};
use super::{Engine, EngineError};
use crate::domain::LabelUpdate;

impl Engine {
    /// Sets the labels of `imported` (ids this import stored) to Gmail's.
    pub(crate) async fn refresh_imported_labels(
        &self,
        run: &Run,
        imported: Vec<String>,
    ) -> Result<(), EngineError> {
        if imported.is_empty() {
            return Ok(());
        }
        let labels = match run.listed_labels() {
            Some(labels) => labels.to_vec(),
            None => {
                run.timed(Stage::List, self.gmail.labels(run.mailbox()))
                    .await?
            }
        };
        // A message no label's listing names has no labels.
        let mut now: HashMap<String, Vec<String>> =
            imported.into_iter().map(|id| (id, Vec::new())).collect();
        for label in &labels {
            let query = ListQuery {
                include_spam_trash: true,
                label_ids: vec![label.id.clone()],
                ..ListQuery::default()
            };
            let mut pages = self.gmail.list_messages(run.mailbox(), query);
            while let Some(page) = run.timed(Stage::List, pages.next()).await {
                for m in page?.messages {
                    if let Some(set) = now.get_mut(&m.id) {
                        set.push(label.id.clone());
                    }
                }
            }
        }
        info!(
            labels = labels.len(),
            messages = now.len(),
            "imported messages' labels read from Gmail (the mailbox has a cursor)"
        );
        let mut updates: Vec<LabelUpdate> = now
            .into_iter()
            .map(|(id, mut label_ids)| {
                label_ids.sort();
                LabelUpdate {
                    provider_message_id: id,
                    label_ids,
                    history_id: None,
                }
            })
            .collect();
        updates.sort_by(|a, b| a.provider_message_id.cmp(&b.provider_message_id));
        for chunk in updates.chunks(self.options.batch_messages.max(1)) {
            let batch = Batch {
                label_updates: chunk.to_vec(),
                ..Batch::default()
            };
            self.commit(run, &batch).await?;
        }
        Ok(())
    }
}
