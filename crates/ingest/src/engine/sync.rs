//! Incremental sync: replay Gmail's history from the mailbox's cursor.
//!
//! Each history page is applied in one transaction — new messages fetched raw
//! and ingested exactly as a backfill does, deletions soft, label sets
//! replaced — together with its ledger events and the cursor advanced to the
//! last record of the page. So the cursor never passes what was committed,
//! and replaying a page changes nothing. No listing, no thread calls: a sync
//! costs 2 units per history page plus 5 per new message.
//!
//! Without a cursor (never backfilled) the sync backs up the fallback window
//! first; with an expired cursor (404) it does the same and records
//! `history.expired`. Both take the fresh cursor from getProfile before listing.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use gmail::{GmailError, HistoryPage};
use ledger::{EventType, NewEvent};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::run::{CursorUpdate, RunKind, RunLease, RunStatus, history_i64};
use super::summary::{RunSummary, Tally, api_delta};
use super::thread_fetch::{BlobPuts, MessageResult, RunContext, ThreadWork};
use super::writer::{PageChanges, check_blobs_durable, make_blobs_durable, write_batch};
use super::{Engine, EngineError, Progress, Window};
use crate::repo::{self, LabelUpdate};

/// New messages of one page fetched at once (the client caps requests per mailbox).
const MESSAGES_IN_FLIGHT: usize = 16;

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub mailbox: String,
    /// The window backed up when there is no usable cursor.
    pub fallback_days: u32,
}

/// How the run got its data.
enum Source {
    History { start: u64 },
    Window { window: Window, expired: bool },
}

impl Engine {
    pub async fn sync(
        &self,
        request: SyncRequest,
        cancel: CancellationToken,
        progress: &Progress,
    ) -> Result<RunSummary, EngineError> {
        let started = Instant::now();
        let mailbox = request.mailbox.to_lowercase();
        let metrics_before = self.gmail.mailbox_metrics(&mailbox);
        let mailbox_id = self.register_mailbox(&mailbox).await?;
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT history_id FROM mailboxes WHERE id = $1")
                .bind(mailbox_id)
                .fetch_one(&self.pool)
                .await
                .map_err(EngineError::db("read cursor"))?;
        let fallback = Window::last_days(request.fallback_days, chrono::Utc::now())?;

        let lease = RunLease::acquire(
            &self.pool,
            mailbox_id,
            &mailbox,
            RunKind::Sync,
            None,
            cursor.map(|c| c as u64),
            self.options.lease,
        )
        .await?;
        let ctx = RunContext {
            run_id: lease.run_id,
            mailbox_id,
            mailbox: mailbox.clone(),
            include_spam_trash: false,
        };
        let mut source = match cursor {
            Some(c) => Source::History { start: c as u64 },
            None => Source::Window {
                window: fallback,
                expired: false,
            },
        };

        let mut tally = Tally::default();
        let result: Result<CursorUpdate, EngineError> = async {
            if let Source::History { start } = source {
                match self
                    .replay_history(&ctx, &lease, start, &cancel, &mut tally)
                    .await
                {
                    // The cursor advanced page by page with the data.
                    Ok(_) => return Ok(CursorUpdate::Keep),
                    Err(EngineError::Gmail(GmailError::HistoryExpired { .. })) => {
                        warn!(
                            start,
                            "history expired; backing up the fallback window instead"
                        );
                        source = Source::Window {
                            window: fallback,
                            expired: true,
                        };
                    }
                    Err(e) => return Err(e),
                }
            }
            let Source::Window { window, expired } = source else {
                return Ok(CursorUpdate::Keep);
            };
            // The fresh cursor comes first: changes during the backfill replay next time.
            let profile = self.gmail.profile(&mailbox).await?;
            if expired {
                self.record_expired(&ctx, cursor, window).await?;
            }
            let committed = std::sync::Mutex::new(Tally::default());
            match self
                .ingest_window(&ctx, &lease, window, &cancel, progress, &committed)
                .await
            {
                Ok(window_tally) => tally.merge(window_tally),
                Err(e) => {
                    tally.merge(committed.into_inner().unwrap_or_default());
                    return Err(e);
                }
            }
            Ok(CursorUpdate::Replace(profile.history_id))
        }
        .await;

        let (status, cursor_update, error) = match result {
            Ok(_) if cancel.is_cancelled() => (RunStatus::Interrupted, CursorUpdate::Keep, None),
            Ok(update) => (RunStatus::Completed, update, None),
            Err(e) => (RunStatus::Failed, CursorUpdate::Keep, Some(e.to_string())),
        };
        let (window, expired) = match source {
            Source::Window { window, expired } => (Some(window), expired),
            Source::History { .. } => (None, false),
        };
        let run_id = lease.run_id;
        lease
            .finish(
                status,
                serde_json::to_value(&tally).unwrap_or_default(),
                error.clone(),
                cursor_update,
            )
            .await?;
        let stored_cursor: Option<i64> =
            sqlx::query_scalar("SELECT history_id FROM mailboxes WHERE id = $1")
                .bind(mailbox_id)
                .fetch_one(&self.pool)
                .await
                .map_err(EngineError::db("read cursor"))?;
        let api = api_delta(&self.gmail.mailbox_metrics(&mailbox), &metrics_before);
        Ok(RunSummary {
            run_id,
            mailbox,
            kind: RunKind::Sync.as_str(),
            status: status.as_str(),
            window,
            tally,
            history_expired: expired,
            cursor: stored_cursor.map(|c| c.to_string()),
            api,
            duration_ms: started.elapsed().as_millis() as u64,
            error,
        })
    }

    async fn record_expired(
        &self,
        ctx: &RunContext,
        old_cursor: Option<i64>,
        window: Window,
    ) -> Result<(), EngineError> {
        let mut tx = self.pool.begin().await.map_err(EngineError::db("begin"))?;
        ledger::append(
            &mut tx,
            ctx.mailbox_id,
            ctx.run_id,
            &[NewEvent::new(
                EventType::HistoryExpired,
                format!("run:{}", ctx.run_id),
                json!({"start_history_id": old_cursor.map(|c| c.to_string()), "fallback_window": window}),
            )],
        )
        .await?;
        tx.commit().await.map_err(EngineError::db("commit"))?;
        Ok(())
    }

    /// Applies every history page after `start`; returns the final cursor.
    async fn replay_history(
        &self,
        ctx: &RunContext,
        lease: &RunLease,
        start: u64,
        cancel: &CancellationToken,
        tally: &mut Tally,
    ) -> Result<u64, EngineError> {
        let mut pages = self.gmail.history(&ctx.mailbox, start);
        let mut cursor = start;
        while let Some(page) = pages.next().await {
            if cancel.is_cancelled() {
                break;
            }
            let page = page?;
            let is_last = page.next_page_token.is_none();
            let page_tally = self.apply_page(ctx, &page, is_last, &mut cursor).await?;
            tally.merge(page_tally);
            lease.record_counts(tally).await?;
        }
        info!(cursor, pages = tally.history_pages, "history replayed");
        Ok(cursor)
    }

    /// One page: fetch its new messages, then commit everything with the cursor.
    async fn apply_page(
        &self,
        ctx: &RunContext,
        page: &HistoryPage,
        is_last: bool,
        cursor: &mut u64,
    ) -> Result<Tally, EngineError> {
        // Net effect of the page, in record order.
        let mut added: Vec<(String, String)> = Vec::new();
        let mut deleted: Vec<String> = Vec::new();
        let mut labels: Vec<LabelUpdate> = Vec::new();
        for record in &page.records {
            for m in &record.messages_added {
                // As in a backfill: spam and trash only when asked for.
                let excluded = m.label_ids.iter().any(|l| l == "SPAM" || l == "TRASH");
                if ctx.include_spam_trash || !excluded {
                    added.push((m.id.clone(), m.thread_id.clone()));
                }
            }
            for m in &record.messages_deleted {
                deleted.push(m.id.clone());
            }
            for change in record.labels_added.iter().chain(&record.labels_removed) {
                labels.push(LabelUpdate {
                    provider_message_id: change.id.clone(),
                    label_ids: change.message_label_ids.clone(),
                    history_id: Some(history_i64(record.id)?),
                });
            }
        }
        let deleted_set: HashSet<&String> = deleted.iter().collect();
        let candidate_ids: Vec<String> = added
            .iter()
            .filter(|(id, _)| !deleted_set.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        let stored = {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(EngineError::db("acquire"))?;
            repo::pg::stored_message_ids(&mut conn, ctx.mailbox_id, &candidate_ids).await?
        };
        let mut seen = HashSet::new();
        let to_fetch: Vec<String> = candidate_ids
            .into_iter()
            .filter(|id| !stored.contains(id) && seen.insert(id.clone()))
            .collect();

        let fetched: Vec<MessageResult> = stream::iter(to_fetch)
            .map(|id| self.fetch_history_message(ctx, id).boxed())
            .buffer_unordered(MESSAGES_IN_FLIGHT)
            .try_collect()
            .await?;

        // Group new messages by thread, as backfill writes them.
        let mut threads: BTreeMap<String, ThreadWork> = BTreeMap::new();
        // Not a thread: carries the page's skips and their blobs.
        let mut skipped_only = ThreadWork::new(String::new(), None);
        for result in fetched {
            let work = match &result {
                // A sync-added message's thread is not known current: the next
                // backfill re-examines it.
                MessageResult::Fetched(m, _) => threads
                    .entry(m.meta.thread_id.clone())
                    .or_insert_with_key(|id| ThreadWork::new(id.clone(), None)),
                MessageResult::Skipped { .. } => &mut skipped_only,
            };
            work.absorb(result);
        }
        let batch: Vec<ThreadWork> = threads.into_values().collect();

        let new_cursor = if is_last {
            page.history_id.max(*cursor)
        } else {
            page.records
                .iter()
                .map(|r| r.id)
                .max()
                .unwrap_or(*cursor)
                .max(*cursor)
        };
        let changes = PageChanges {
            label_updates: labels,
            deletes: deleted,
        };
        // Blobs before rows, flushed once for the whole page.
        make_blobs_durable(&self.store, batch.iter().chain([&skipped_only])).await?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(EngineError::db("begin page"))?;
        let mut page_tally = write_batch(&mut tx, ctx, &self.store, &batch, &changes).await?;
        page_tally.merge(write_skips(&mut tx, ctx, &self.store, &skipped_only).await?);
        sqlx::query(
            "UPDATE mailboxes SET history_id = $2, history_id_updated_at = now(), updated_at = now()
             WHERE id = $1 AND history_id IS DISTINCT FROM $2",
        )
        .bind(ctx.mailbox_id)
        .bind(history_i64(new_cursor)?)
        .execute(&mut *tx)
        .await
        .map_err(EngineError::db("advance cursor"))?;
        tx.commit().await.map_err(EngineError::db("commit page"))?;
        *cursor = new_cursor;
        page_tally.history_pages += 1;
        page_tally.history_records += page.records.len() as u64;
        Ok(page_tally)
    }

    async fn fetch_history_message(
        &self,
        ctx: &RunContext,
        id: String,
    ) -> Result<MessageResult, EngineError> {
        match self.gmail.message_raw(&ctx.mailbox, &id).await {
            Ok(raw) => self.archive_message(raw).await,
            Err(GmailError::NotFound { .. }) => Ok(MessageResult::Skipped {
                skipped: super::Skipped {
                    message_id: id,
                    reason: "not found: deleted after it was added".into(),
                },
                raw_blob: None,
                blobs: BlobPuts::default(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Records the skips of a page (and the blobs of unparseable messages).
async fn write_skips(
    conn: &mut sqlx::PgConnection,
    ctx: &RunContext,
    store: &store::BlobStore,
    work: &ThreadWork,
) -> Result<Tally, EngineError> {
    check_blobs_durable(store, work)?;
    let tally = Tally {
        blobs: work.blobs.counts,
        skipped: work.skipped.clone(),
        ..Tally::default()
    };
    repo::pg::upsert_blobs(conn, &work.orphan_blobs).await?;
    let events: Vec<NewEvent> = work
        .skipped
        .iter()
        .map(|s| {
            NewEvent::new(
                EventType::MessageSkipped,
                format!("message:{}", s.message_id),
                json!({"reason": s.reason}),
            )
        })
        .collect();
    ledger::append(conn, ctx.mailbox_id, ctx.run_id, &events).await?;
    Ok(tally)
}
