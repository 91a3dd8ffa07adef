//! The labels of imported mail: Gmail's, read when the import ends.
//!
//! An import stores the labels its file names, which are as old as the file.
//! The import then sets the mailbox's history cursor (taken before it listed
//! anything), and every later run trusts stored labels to be no older than
//! the cursor: it replays history since the cursor onto them
//! (`label_source.rs`, `sync.rs`). A file's labels from before the cursor
//! would so stay for ever. So before its run ends the import asks Gmail for
//! the labels of everything it stored: one messages.list per label (the
//! run's labels.list names them), SPAM and TRASH included, 5 units per 500
//! ids; a message no listing names has no labels. Read after the cursor was
//! taken, they are what history replay assumes; a change racing the listing
//! is after the cursor too, and the next sync replays it.
//!
//! Memory: one entry per imported message, its Gmail id as a number where it
//! is one (16 hex digits, as Gmail writes them) and its labels as indexes
//! into the label list: about 60 bytes a message.

use std::collections::HashMap;

use futures::StreamExt;
use gmail::ListQuery;
use tracing::info;

use super::commit::Batch;
use super::run::{Run, Stage};
use super::{Engine, EngineError};
use crate::domain::LabelUpdate;

/// A Gmail message id, held compactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    /// Lowercase hex without leading zeros, as Gmail writes ids.
    Hex(u64),
    /// Anything else, as it is.
    Other(Box<str>),
}

impl IdKey {
    fn of(id: &str) -> Self {
        match u64::from_str_radix(id, 16) {
            Ok(v) if format!("{v:x}") == id => IdKey::Hex(v),
            _ => IdKey::Other(id.into()),
        }
    }

    fn id(&self) -> String {
        match self {
            IdKey::Hex(v) => format!("{v:x}"),
            IdKey::Other(s) => s.to_string(),
        }
    }
}

impl Engine {
    /// Sets the labels of `imported` (ids this import stored, or found stored)
    /// to Gmail's.
    pub(crate) async fn refresh_imported_labels(
        &self,
        run: &Run,
        imported: Vec<String>,
    ) -> Result<(), EngineError> {
        if imported.is_empty() {
            return Ok(());
        }
        let labels = self.run_labels(run).await?;
        let mut now: HashMap<IdKey, Vec<u32>> = imported
            .iter()
            .map(|id| (IdKey::of(id), Vec::new()))
            .collect();
        drop(imported);
        for (index, label) in (0u32..).zip(&labels) {
            let query = ListQuery {
                include_spam_trash: true,
                label_ids: vec![label.id.clone()],
                ..ListQuery::default()
            };
            let mut pages = self.gmail.list_messages(run.mailbox(), query);
            while let Some(page) = run.timed(Stage::List, pages.next()).await {
                for m in page?.messages {
                    if let Some(set) = now.get_mut(&IdKey::of(&m.id)) {
                        set.push(index);
                    }
                }
            }
        }
        info!(
            labels = labels.len(),
            messages = now.len(),
            "imported messages' labels read from Gmail"
        );
        let mut keys: Vec<IdKey> = now.keys().cloned().collect();
        keys.sort_by_cached_key(IdKey::id);
        for chunk in keys.chunks(self.options.batch_messages.max(1)) {
            let label_updates = chunk
                .iter()
                .map(|key| {
                    let mut label_ids: Vec<String> = now
                        .get(key)
                        .into_iter()
                        .flatten()
                        .filter_map(|i| labels.get(*i as usize).map(|l| l.id.clone()))
                        .collect();
                    label_ids.sort();
                    LabelUpdate {
                        provider_message_id: key.id(),
                        label_ids,
                        history_id: None,
                    }
                })
                .collect();
            let batch = Batch {
                label_updates,
                ..Batch::default()
            };
            self.commit(run, &batch).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::IdKey;

    #[test]
    fn gmail_ids_are_held_as_numbers_and_come_back_as_they_were() {
        for id in ["169953a795627073", "1", "ffffffffffffffff"] {
            assert!(matches!(IdKey::of(id), IdKey::Hex(_)), "{id}");
            assert_eq!(IdKey::of(id).id(), id);
        }
        // Leading zeros, upper case, too long, not hex: kept as they are.
        for id in [
            "0169953a795627073",
            "169953A795627073",
            "1ffffffffffffffff",
            "x1",
            "",
        ] {
            assert!(matches!(IdKey::of(id), IdKey::Other(_)), "{id}");
            assert_eq!(IdKey::of(id).id(), id);
        }
    }
}
