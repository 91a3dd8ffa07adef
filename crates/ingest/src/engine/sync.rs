//! Incremental sync: replay Gmail's history from the mailbox's cursor.
//!
//! Each history page is one batch for the committer — new messages fetched
//! raw and ingested exactly as a backfill does, deletions soft, label sets
//! replaced — with the cursor advanced to the last record of the page. So the
//! cursor never passes what was committed, and replaying a page changes
//! nothing. No listing, no thread calls: a sync costs 2 units per history page
//! plus 5 per new message.
//!
//! The backed-up scope is every message outside SPAM and TRASH (unless the
//! run includes them). A message enters it by a label change as well as by
//! arriving: one moved out of SPAM or TRASH that was never stored is fetched
//! like new mail. Whether a fetched message is in scope is decided by the
//! labels it has when fetched, so mail spammed before the sync saw it is not
//! stored (and is fetched once it is rescued).
//!
//! Without a cursor (never backfilled) the sync backs up the fallback window
//! first; with an expired cursor (404) it does the same and records
//! `history.expired`. Both take the fresh cursor from getProfile before listing.

use std::collections::HashSet;

use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use gmail::{GmailError, HistoryPage};
use ledger::{EventType, NewEvent, Subject};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::commit::Batch;
use super::run::{BodyEnd, Run, RunPlan, Stage};
use super::thread_fetch::{MessageResult, is_spam_or_trash};
use super::{Engine, EngineError, MailboxRef, Progress};
use crate::domain::{LabelUpdate, RunKind, RunSummary, Window};
use crate::repo::{CursorUpdate, HistoryCursor, as_i64};

/// New messages of one page fetched at once (the client caps requests per mailbox).
const MESSAGES_IN_FLIGHT: usize = 16;

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub mailbox: MailboxRef,
    /// The window backed up when there is no usable cursor.
    pub fallback_days: u32,
}

impl Engine {
    /// Applies what changed in Gmail since the cursor: one run, from lease to summary.
    pub async fn sync(
        &self,
        request: SyncRequest,
        cancel: CancellationToken,
        progress: &Progress,
    ) -> Result<RunSummary, EngineError> {
        let fallback = Window::last_days(request.fallback_days, chrono::Utc::now())?;
        let (mailbox_id, email) = self.resolve(&request.mailbox).await?;
        let api_before = self.gmail.mailbox_metrics(email.as_str());
        let cursor = self.repo.mailbox_cursor(mailbox_id).await?;
        let plan = RunPlan {
            kind: RunKind::Sync,
            mailbox: MailboxRef::Known {
                id: mailbox_id,
                org: self.org.clone(),
                email,
            },
            window: None,
            start_history_id: cursor,
            include_spam_trash: false,
            api_before,
        };
        let cancel = &cancel;
        self.run(plan, cancel, |run| async move {
            let mut rewound = false;
            if let Some(start) = cursor {
                match self.replay_history(&run, start, cancel).await {
                    // The cursor advanced page by page with the data.
                    Ok(()) => {
                        return Ok(BodyEnd {
                            cursor: CursorUpdate::Keep,
                            window: None,
                            history_expired: false,
                        });
                    }
                    Err(EngineError::Gmail(GmailError::HistoryExpired { .. })) => {
                        warn!(
                            start = start.0,
                            "history expired; backing up the fallback window instead"
                        );
                        self.record_expired(&run, start, fallback, None).await?;
                    }
                    Err(EngineError::HistoryBehindCursor { cursor, gmail }) => {
                        warn!(
                            "{}: Gmail's historyId {gmail} is behind the stored cursor {cursor}: \
                             the mailbox was restored or re-created at Google, or the address \
                             belongs to another account now; backing up the last {} days and \
                             starting over from Gmail's cursor (the mailbox is degraded until \
                             `mailingest verify --full` passes)",
                            run.mailbox(),
                            request.fallback_days
                        );
                        self.record_expired(&run, start, fallback, Some(gmail))
                            .await?;
                        rewound = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            // The fresh cursor comes first: changes during the backfill replay next time.
            let profile = self.gmail.profile(run.mailbox()).await?;
            // History cannot say what was deleted meanwhile: the window's
            // rows are accounted for against Gmail's listing (`vanished.rs`).
            let live = self.rows_to_account_for(&run, fallback, false).await?;
            self.ingest_window(&run, fallback, cancel, progress).await?;
            if !cancel.is_cancelled() {
                self.settle_vanished(&run, fallback, live).await?;
            }
            let fresh = HistoryCursor(profile.history_id);
            Ok(BodyEnd {
                cursor: if rewound {
                    CursorUpdate::Rewind(fresh)
                } else {
                    CursorUpdate::Advance(fresh)
                },
                window: Some(fallback),
                history_expired: cursor.is_some(),
            })
        })
        .await
    }

    /// Records why the run backs up a window instead of replaying history:
    /// the cursor expired, or (`gmail_history_id`) Gmail's history is behind it.
    async fn record_expired(
        &self,
        run: &Run,
        old_cursor: HistoryCursor,
        window: Window,
        gmail_history_id: Option<u64>,
    ) -> Result<(), EngineError> {
        let mut payload =
            json!({"start_history_id": old_cursor.to_string(), "fallback_window": window});
        if let Some(gmail) = gmail_history_id {
            payload["reason"] = json!("history_behind_cursor");
            payload["gmail_history_id"] = json!(gmail.to_string());
        }
        let event = NewEvent::new(EventType::HistoryExpired, Subject::Run(run.id()), payload);
        // Not replayed through an outage: an append whose commit was
        // acknowledged into a dropped connection would be appended twice.
        let mut tx = self.repo.begin(run.fence()).await?;
        tx.append_events(std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies every history page after `start`, each committed with its cursor.
    async fn replay_history(
        &self,
        run: &Run,
        start: HistoryCursor,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let mut pages = self.gmail.history(run.mailbox(), start.0);
        let mut cursor = start;
        let mut applied = 0u64;
        let mut first = true;
        while let Some(page) = run.timed(Stage::List, pages.next()).await {
            if cancel.is_cancelled() {
                break;
            }
            let page = page?;
            // Gmail's historyId never goes backwards for one mailbox: if it
            // is behind the cursor, this is another mailbox's history.
            if first && page.history_id < start.0 {
                return Err(EngineError::HistoryBehindCursor {
                    cursor: start.0,
                    gmail: page.history_id,
                });
            }
            first = false;
            let batch = self.page_batch(run, &page, cursor).await?;
            self.commit(run, &batch).await?;
            cursor = batch.cursor.unwrap_or(cursor);
            applied += 1;
        }
        info!(cursor = cursor.0, pages = applied, "history replayed");
        Ok(())
    }

    /// One page as a batch: its changes, its new messages fetched, its cursor.
    async fn page_batch(
        &self,
        run: &Run,
        page: &HistoryPage,
        cursor: HistoryCursor,
    ) -> Result<Batch, EngineError> {
        let changes = PageChanges::of(page, run.include_spam_trash());
        let to_fetch = self.unstored(run, &changes).await?;
        let fetched: Vec<Option<MessageResult>> = stream::iter(to_fetch)
            .map(|id| {
                self.fetch_in_scope(run, id, "not found: deleted after it was added")
                    .boxed()
            })
            .buffer_unordered(MESSAGES_IN_FLIGHT)
            .try_collect()
            .await?;

        let mut batch = Batch {
            label_updates: changes.labels,
            deletes: changes.deleted,
            cursor: Some(page_cursor(page, cursor)),
            history_pages: 1,
            history_records: page.records.len() as u64,
            ..Batch::default()
        };
        batch.add_messages(fetched.into_iter().flatten());
        Ok(batch)
    }

    /// The page's added messages that are not stored yet, each once.
    async fn unstored(&self, run: &Run, changes: &PageChanges) -> Result<Vec<String>, EngineError> {
        let deleted: HashSet<&String> = changes.deleted.iter().collect();
        let candidates: Vec<String> = changes
            .added
            .iter()
            .filter(|id| !deleted.contains(id))
            .cloned()
            .collect();
        let stored = self
            .riding_out("read stored message ids", || async {
                Ok(self
                    .repo
                    .stored_message_ids(run.mailbox_id(), &candidates)
                    .await?)
            })
            .await?;
        let mut seen = HashSet::new();
        // Quarantined ones are the quarantine's to retry.
        Ok(candidates
            .into_iter()
            .filter(|id| !stored.contains(id) && !run.is_quarantined(id))
            .filter(|id| seen.insert(id.clone()))
            .collect())
    }
}

/// The net effect of one history page, in record order.
#[derive(Debug, Default)]
struct PageChanges {
    /// Messages that arrived in scope or entered it by a label change:
    /// fetched unless stored already.
    added: Vec<String>,
    deleted: Vec<String>,
    labels: Vec<LabelUpdate>,
}

impl PageChanges {
    fn of(page: &HistoryPage, include_spam_trash: bool) -> Self {
        let mut changes = PageChanges::default();
        for record in &page.records {
            for m in &record.messages_added {
                // As in a backfill: spam and trash only when asked for.
                if include_spam_trash || !is_spam_or_trash(&m.label_ids) {
                    changes.added.push(m.id.clone());
                }
            }
            changes
                .deleted
                .extend(record.messages_deleted.iter().map(|m| m.id.clone()));
            // Out of SPAM or TRASH and into scope: never stored, so fetched
            // like new mail (a relabel of a stored message only updates it).
            if !include_spam_trash {
                changes.added.extend(
                    record
                        .labels_removed
                        .iter()
                        .filter(|c| is_spam_or_trash(&c.label_ids))
                        .filter(|c| !is_spam_or_trash(&c.message_label_ids))
                        .map(|c| c.id.clone()),
                );
            }
            for change in record.labels_added.iter().chain(&record.labels_removed) {
                changes.labels.push(LabelUpdate {
                    provider_message_id: change.id.clone(),
                    label_ids: change.message_label_ids.clone(),
                    history_id: as_i64("historyId", record.id).ok(),
                });
            }
        }
        changes
    }
}

/// Where the cursor stands after a page: its last record, or on the last
/// page the mailbox's historyId; never behind where it was.
fn page_cursor(page: &HistoryPage, cursor: HistoryCursor) -> HistoryCursor {
    let reached = if page.next_page_token.is_none() {
        page.history_id
    } else {
        page.records.iter().map(|r| r.id).max().unwrap_or(cursor.0)
    };
    HistoryCursor(reached.max(cursor.0))
}
