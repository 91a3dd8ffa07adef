//! Where a backfill learns the current labels of stored messages without
//! threads.get: one source per run, built the first time a changed stored
//! thread needs it, and the rule for when a run uses it.
//!
//! A stored thread whose historyId changed has new messages, relabelled
//! stored ones, or both. threads.get (minimal) answers both for one thread,
//! and costs 10 units on Gmail's 2025 table but 40 on the 2026 one, eight
//! pages of messages.list: relabelling a few hundred threads would then cost
//! more than backing them up did. So when threads.get costs more than two
//! pages of messages.list, a run learns a changed thread's new messages from
//! its one messages.list over the window (`backfill.rs`) and its labels from
//! here, for the whole mailbox at once:
//!
//! - **From history**, when the mailbox has a cursor: history.list from it, 2
//!   units a page of up to 500 records; each message's labels after its last
//!   change. Stored labels are never older than the cursor (a backfill reads
//!   labels after taking it, a sync commits labels with the cursor they
//!   reach), so a message history does not mention still has its stored
//!   labels, and replaying added and removed labels in order onto the stored
//!   set gives the current set even where the row already had some of them.
//!   The cursor is only read here: where it goes is the run's ending's call.
//! - **From listings**, when there is no cursor or history has expired (404):
//!   labels.list (1 unit), then messages.list over the window for each label,
//!   spam and trash included (5 units a page of 500 ids, per label): a
//!   message's labels are those whose listing holds it. This knows the
//!   window's messages only, which is what the thread is then recorded
//!   current for (`Coverage`).
//!
//! Either way everything here is read after threads.list, so it is at least
//! as new as the historyIds recorded with it; a change racing the listings
//! moves a thread's historyId past the recorded one, and the next run looks
//! at the thread again.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::StreamExt;
use gmail::{GmailError, LabelChange, ListQuery, Method, QuotaTable};
use tokio::sync::OnceCell;
use tracing::{info, warn};

use super::run::{Run, Stage};
use super::{Engine, EngineError};
use crate::domain::{LabelUpdate, Window};
use crate::repo::{HistoryCursor, as_i64};

/// Whether a run on `table` learns stored messages' labels from a
/// [`LabelSource`] instead of threads.get: when one threads.get costs more
/// than two pages of messages.list (2026: 40 > 10; 2025: 10 = 10, so a run on
/// the 2025 table keeps threads.get and its figures).
pub(crate) fn labels_without_threads_get(table: QuotaTable) -> bool {
    table.cost(Method::ThreadsGet) > 2 * table.cost(Method::MessagesList)
}

/// A run's label source, built once, on first use, for its window.
pub(crate) struct LazyLabelSource {
    window: Window,
    source: OnceCell<LabelSource>,
}

impl LazyLabelSource {
    pub(crate) fn new(window: Window) -> Self {
        LazyLabelSource {
            window,
            source: OnceCell::new(),
        }
    }

    pub(crate) async fn get(
        &self,
        engine: &Engine,
        run: &Run,
    ) -> Result<&LabelSource, EngineError> {
        self.source
            .get_or_try_init(|| engine.label_source(run, self.window))
            .await
    }
}

/// How a source was built, which says what a message it does not name has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Unnamed: not changed since the cursor, so its stored labels.
    History,
    /// Unnamed but in the window: in no label's listing, so no labels.
    Listing,
}

/// The labels of the mailbox's messages, as far as one run needs them.
#[derive(Debug)]
pub(crate) struct LabelSource {
    origin: Origin,
    /// thread id → message id → what is known of its labels.
    threads: HashMap<String, HashMap<String, Known>>,
}

/// What the source knows of one message's labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Known {
    /// Its whole label set at some point; `None`: the stored set.
    base: Option<Vec<String>>,
    /// Labels added and removed after `base`, the last change of each winning.
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
    /// The history record of its last change (history only).
    history_id: Option<i64>,
}

impl Known {
    /// One history change. Gmail's message labels after the change, when it
    /// sends them, replace everything before; an empty set is read as absent:
    /// replaying the change onto the stored set gives the same answer.
    fn apply(&mut self, change: &LabelChange, added: bool, record: u64) {
        if !change.message_label_ids.is_empty() {
            self.base = Some(change.message_label_ids.clone());
            self.added.clear();
            self.removed.clear();
        } else {
            let (into, out_of) = if added {
                (&mut self.added, &mut self.removed)
            } else {
                (&mut self.removed, &mut self.added)
            };
            for label in &change.label_ids {
                out_of.remove(label);
                into.insert(label.clone());
            }
        }
        self.history_id = as_i64("historyId", record).ok();
    }

    /// Its labels now, given its stored ones. Labels it keeps stay in their
    /// stored order and new ones follow, so an unchanged set compares equal.
    fn resolve(&self, stored: &[String]) -> Vec<String> {
        let base = self.base.as_deref().unwrap_or(stored);
        let now: HashSet<&String> = base
            .iter()
            .filter(|l| !self.removed.contains(*l))
            .chain(&self.added)
            .collect();
        let mut labels: Vec<String> = stored.iter().filter(|l| now.contains(l)).cloned().collect();
        for label in base.iter().chain(&self.added) {
            if now.contains(label) && !labels.contains(label) {
                labels.push(label.clone());
            }
        }
        labels
    }
}

impl LabelSource {
    fn new(origin: Origin) -> Self {
        LabelSource {
            origin,
            threads: HashMap::new(),
        }
    }

    fn known(&mut self, thread_id: &str, message_id: &str) -> &mut Known {
        self.threads
            .entry(thread_id.to_owned())
            .or_default()
            .entry(message_id.to_owned())
            .or_default()
    }

    /// The label changes of one history page, in record order.
    fn apply_history(&mut self, records: &[gmail::HistoryRecord]) {
        for record in records {
            for change in &record.labels_added {
                self.known(&change.thread_id, &change.id)
                    .apply(change, true, record.id);
            }
            for change in &record.labels_removed {
                self.known(&change.thread_id, &change.id)
                    .apply(change, false, record.id);
            }
        }
    }

    /// The messages of a thread it names, besides the window's (a stored
    /// message moved to TRASH is not in a default-scope listing).
    /// Whether the source knows only the window's messages (a listing per
    /// label), not every message of the mailbox (history since the cursor).
    pub(crate) fn window_only(&self) -> bool {
        self.origin == Origin::Listing
    }

    pub(crate) fn named_in(&self, thread_id: &str) -> impl Iterator<Item = &String> {
        self.threads
            .get(thread_id)
            .into_iter()
            .flat_map(|m| m.keys())
    }

    /// Label updates for the stored messages of a thread whose labels differ
    /// from what is stored. `window` is the thread's messages in the window;
    /// `stored` the stored labels of its messages.
    pub(crate) fn updates(
        &self,
        thread_id: &str,
        window: &[String],
        stored: &HashMap<String, Vec<String>>,
    ) -> Vec<LabelUpdate> {
        let unlabelled = Known {
            base: Some(Vec::new()),
            ..Known::default()
        };
        let named = self.threads.get(thread_id);
        let mut updates: Vec<LabelUpdate> = stored
            .iter()
            .filter_map(|(id, labels)| {
                let known = match named.and_then(|n| n.get(id)) {
                    Some(known) => known,
                    None if self.origin == Origin::Listing && window.contains(id) => &unlabelled,
                    None => return None,
                };
                let now = known.resolve(labels);
                (now != *labels).then(|| LabelUpdate {
                    provider_message_id: id.clone(),
                    label_ids: now,
                    history_id: known.history_id,
                })
            })
            .collect();
        updates.sort_by(|a, b| a.provider_message_id.cmp(&b.provider_message_id));
        updates
    }
}

impl Engine {
    /// The mailbox's labels: those the run listed when it started, asked
    /// again (labels.list, 1 unit) only if it did not.
    pub(crate) async fn run_labels(&self, run: &Run) -> Result<Vec<gmail::Label>, EngineError> {
        match run.listed_labels() {
            Some(labels) => Ok(labels.to_vec()),
            None => Ok(run
                .timed(Stage::List, self.gmail.labels(run.mailbox()))
                .await?),
        }
    }

    /// Builds the run's label source: from history when the mailbox has a
    /// cursor history still holds, else from listings over `window`.
    async fn label_source(&self, run: &Run, window: Window) -> Result<LabelSource, EngineError> {
        let cursor = self
            .riding_out("read cursor", || async {
                Ok(self.repo.mailbox_cursor(run.mailbox_id()).await?)
            })
            .await?;
        if let Some(cursor) = cursor {
            match self.labels_from_history(run, cursor).await {
                Ok(source) => return Ok(source),
                Err(EngineError::Gmail(GmailError::HistoryExpired { .. })) => {
                    warn!(
                        cursor = cursor.0,
                        "history expired; labels from listing each label instead"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        self.labels_from_listing(run, window).await
    }

    async fn labels_from_history(
        &self,
        run: &Run,
        cursor: HistoryCursor,
    ) -> Result<LabelSource, EngineError> {
        let mut source = LabelSource::new(Origin::History);
        let mut pages = self.gmail.history(run.mailbox(), cursor.0);
        let mut read = 0u64;
        while let Some(page) = run.timed(Stage::List, pages.next()).await {
            source.apply_history(&page?.records);
            read += 1;
        }
        info!(cursor = cursor.0, pages = read, "labels read from history");
        Ok(source)
    }

    async fn labels_from_listing(
        &self,
        run: &Run,
        window: Window,
    ) -> Result<LabelSource, EngineError> {
        let mut source = LabelSource::new(Origin::Listing);
        let labels = self.run_labels(run).await?;
        for label in &labels {
            let query = ListQuery {
                after: Some(window.after_secs()),
                before: Some(window.before_secs()),
                // A stored message moved to SPAM or TRASH must show it.
                include_spam_trash: true,
                label_ids: vec![label.id.clone()],
                ..ListQuery::default()
            };
            let mut pages = self.gmail.list_messages(run.mailbox(), query);
            while let Some(page) = run.timed(Stage::List, pages.next()).await {
                for m in page?.messages {
                    source
                        .known(&m.thread_id, &m.id)
                        .base
                        .get_or_insert_with(Vec::new)
                        .push(label.id.clone());
                }
            }
        }
        info!(labels = labels.len(), "labels read by listing each label");
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn change(id: &str, labels: &[&str], message_labels: &[&str]) -> LabelChange {
        LabelChange {
            id: id.into(),
            thread_id: "t".into(),
            label_ids: strings(labels),
            message_label_ids: strings(message_labels),
        }
    }

    fn record(id: u64, added: Vec<LabelChange>, removed: Vec<LabelChange>) -> gmail::HistoryRecord {
        gmail::HistoryRecord {
            id,
            messages_added: Vec::new(),
            messages_deleted: Vec::new(),
            labels_added: added,
            labels_removed: removed,
        }
    }

    #[test]
    fn the_rule_follows_the_table() {
        assert!(labels_without_threads_get(QuotaTable::Y2026));
        assert!(!labels_without_threads_get(QuotaTable::Y2025));
    }

    #[test]
    fn history_gives_the_labels_after_the_last_change() {
        let mut source = LabelSource::new(Origin::History);
        source.apply_history(&[
            // Gmail's set after the change wins over what came before.
            record(
                10,
                vec![change("a", &["STARRED"], &["INBOX", "STARRED"])],
                vec![],
            ),
            record(11, vec![], vec![change("a", &["INBOX"], &["STARRED"])]),
            // Without it, the changes are replayed onto the stored set, the
            // last change of a label winning.
            record(12, vec![change("b", &["STARRED"], &[])], vec![]),
            record(13, vec![], vec![change("b", &["UNREAD", "STARRED"], &[])]),
            record(14, vec![change("b", &["UNREAD"], &[])], vec![]),
            // Added, then removed again: nothing to write.
            record(15, vec![change("c", &["Label_1"], &[])], vec![]),
            record(16, vec![], vec![change("c", &["Label_1"], &[])]),
        ]);
        let stored = HashMap::from([
            ("a".to_string(), strings(&["INBOX", "UNREAD"])),
            ("b".to_string(), strings(&["UNREAD", "INBOX"])),
            ("c".to_string(), strings(&["INBOX"])),
            ("d".to_string(), strings(&["INBOX"])),
        ]);
        let window = strings(&["a", "b", "c", "d"]);
        assert_eq!(
            source.updates("t", &window, &stored),
            vec![LabelUpdate {
                provider_message_id: "a".into(),
                label_ids: strings(&["STARRED"]),
                history_id: Some(11),
            }],
            "b and c end as stored; d is not named: unchanged"
        );
        assert!(source.updates("other", &window, &stored).is_empty());
        let named: BTreeSet<&String> = source.named_in("t").collect();
        assert_eq!(named.len(), 3);
    }

    #[test]
    fn listings_name_every_labelled_message_and_the_rest_have_none() {
        let mut source = LabelSource::new(Origin::Listing);
        for (label, ids) in [("INBOX", ["a", "b"]), ("STARRED", ["b", "x"])] {
            for id in ids {
                source
                    .known("t", id)
                    .base
                    .get_or_insert_with(Vec::new)
                    .push(label.into());
            }
        }
        source
            .known("t", "trashed")
            .base
            .get_or_insert_with(Vec::new)
            .push("TRASH".into());
        let stored = HashMap::from([
            ("a".to_string(), strings(&["INBOX"])),
            ("b".to_string(), strings(&["STARRED", "INBOX", "UNREAD"])),
            ("c".to_string(), strings(&["UNREAD"])),
            ("old".to_string(), strings(&["UNREAD"])),
            ("trashed".to_string(), strings(&["INBOX"])),
        ]);
        let window = strings(&["a", "b", "c"]);
        let labels: HashMap<String, Vec<String>> = source
            .updates("t", &window, &stored)
            .into_iter()
            .map(|u| (u.provider_message_id, u.label_ids))
            .collect();
        assert_eq!(
            labels,
            HashMap::from([
                // Stored order kept: only UNREAD went.
                ("b".to_string(), strings(&["STARRED", "INBOX"])),
                // In the window and in no listing: no labels.
                ("c".to_string(), Vec::new()),
                ("trashed".to_string(), strings(&["TRASH"])),
            ]),
            "a is unchanged; 'old' is outside the window and not named: left alone"
        );
    }
}
