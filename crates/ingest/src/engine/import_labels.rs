//! The labels of imported mail: Gmail's, listed when the import starts.
//!
//! An import's file names labels as old as the file. The import sets the
//! mailbox's history cursor (taken before it lists anything), and every
//! later run trusts stored labels to be no older than that cursor: it
//! replays history since the cursor onto them (`label_source.rs`,
//! `sync.rs`). So the import stores Gmail's labels, not the file's: right
//! after the cursor is taken it lists each label of the mailbox (the run's
//! labels.list names them), SPAM and TRASH included, 5 units per 500 ids,
//! and every message it stores, or finds stored, gets the labels whose
//! listing names it (none when no listing does). Read after the cursor was
//! taken, they are what history replay assumes; a change racing the listing
//! is after the cursor too, and the next sync replays it. The file's label
//! names are only checked against the mailbox's labels, to report the ones
//! Gmail does not know.
//!
//! Memory: each label's ids, sorted, as numbers where they are Gmail's hex
//! (16 hex digits at most, no leading zeros): 8 bytes per label a message
//! carries, so about 25 bytes a message of the mailbox.

use std::collections::HashSet;

use futures::StreamExt;
use gmail::ListQuery;
use tracing::info;

use super::run::{Run, Stage};
use super::{Engine, EngineError};

/// Gmail's labels of every message of the mailbox, by label.
pub(crate) struct GmailLabels {
    /// Each label id with the ids of the messages it is on.
    labels: Vec<(String, IdSet)>,
}

/// A set of Gmail message ids, compactly.
#[derive(Default)]
struct IdSet {
    /// Sorted, each once.
    numeric: Vec<u64>,
    other: HashSet<String>,
}

impl IdSet {
    fn insert(&mut self, id: String) {
        match gmail_hex(&id) {
            Some(n) => self.numeric.push(n),
            None => {
                self.other.insert(id);
            }
        }
    }

    fn seal(mut self) -> Self {
        self.numeric.sort_unstable();
        self.numeric.dedup();
        self.numeric.shrink_to_fit();
        self
    }

    fn contains(&self, id: &str) -> bool {
        match gmail_hex(id) {
            Some(n) => self.numeric.binary_search(&n).is_ok(),
            None => self.other.contains(id),
        }
    }
}

/// The number a Gmail id spells, when `format!("{n:x}")` gives the id back.
pub(crate) fn gmail_hex(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    let canonical = (1..=16).contains(&b.len())
        && (b[0] != b'0' || b.len() == 1)
        && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    canonical
        .then(|| u64::from_str_radix(id, 16).ok())
        .flatten()
}

impl GmailLabels {
    /// The label ids on message `id`, sorted.
    pub(crate) fn of(&self, id: &str) -> Vec<String> {
        let mut on: Vec<String> = self
            .labels
            .iter()
            .filter(|(_, ids)| ids.contains(id))
            .map(|(label, _)| label.clone())
            .collect();
        on.sort();
        on
    }

    /// Whether message `id` carries `label`.
    pub(crate) fn has(&self, id: &str, label: &str) -> bool {
        self.labels
            .iter()
            .any(|(l, ids)| l == label && ids.contains(id))
    }
}

impl Engine {
    /// Lists each label of the mailbox (the run's labels, else labels.list),
    /// SPAM and TRASH always among them: one messages.list per label.
    pub(crate) async fn gmail_labels(&self, run: &Run) -> Result<GmailLabels, EngineError> {
        let mut ids: Vec<String> = self
            .run_labels(run)
            .await?
            .into_iter()
            .map(|l| l.id)
            .collect();
        for always in ["SPAM", "TRASH"] {
            if !ids.iter().any(|l| l == always) {
                ids.push(always.to_owned());
            }
        }
        let mut labels = Vec::with_capacity(ids.len());
        for label in ids {
            let query = ListQuery {
                include_spam_trash: true,
                label_ids: vec![label.clone()],
                ..ListQuery::default()
            };
            let mut set = IdSet::default();
            let mut pages = self.gmail.list_messages(run.mailbox(), query);
            while let Some(page) = run.timed(Stage::List, pages.next()).await {
                for m in page?.messages {
                    set.insert(m.id);
                }
            }
            labels.push((label, set.seal()));
        }
        info!(
            labels = labels.len(),
            memberships = labels
                .iter()
                .map(|(_, s)| s.numeric.len() + s.other.len())
                .sum::<usize>(),
            "the mailbox's labels listed"
        );
        Ok(GmailLabels { labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(of: &[(&str, &[&str])]) -> GmailLabels {
        GmailLabels {
            labels: of
                .iter()
                .map(|(label, ids)| {
                    let mut set = IdSet::default();
                    for id in *ids {
                        set.insert((*id).to_owned());
                    }
                    ((*label).to_owned(), set.seal())
                })
                .collect(),
        }
    }

    /// Gmail's ids are held as numbers only when the number gives the very
    /// same id back; any other spelling is its own id.
    #[test]
    fn each_message_gets_the_labels_whose_listing_names_it_under_its_own_spelling() {
        let gmail = labels(&[
            (
                "INBOX",
                &["169953a795627073", "1", "0abc", "ffffffffffffffff"],
            ),
            ("STARRED", &["169953a795627073", "ABC"]),
            ("TRASH", &["1ffffffffffffffff", "x1"]),
        ]);
        assert_eq!(gmail.of("169953a795627073"), ["INBOX", "STARRED"]);
        assert_eq!(gmail.of("ffffffffffffffff"), ["INBOX"]);
        assert_eq!(gmail.of("0abc"), ["INBOX"]);
        assert!(gmail.of("abc").is_empty(), "0abc and ABC are other ids");
        assert_eq!(gmail.of("ABC"), ["STARRED"]);
        assert_eq!(gmail.of("1ffffffffffffffff"), ["TRASH"]);
        assert!(gmail.has("x1", "TRASH") && !gmail.has("x1", "INBOX"));
        assert!(gmail.of("2").is_empty() && gmail.of("").is_empty());
        for id in ["169953a795627073", "1", "ffffffffffffffff"] {
            assert!(gmail_hex(id).is_some(), "{id}");
        }
        for id in [
            "0169953a795627073",
            "169953A795627073",
            "1ffffffffffffffff",
            "x1",
            "",
        ] {
            assert!(gmail_hex(id).is_none(), "{id}");
        }
    }
}
