//! The windowed backfill: list threads in a window, fetch what changed, write.
//!
//! Three stages overlap through bounded channels: the lister pages through
//! threads.list and drops every thread whose stored historyId equals the
//! listed one and covers the window; fetchers (bounded concurrency, the
//! client's quota limiter) turn changed threads into `ThreadWork`; the writer
//! commits them in batches.
//!
//! # Cost model
//!
//! In Gmail quota units, what a mailbox's minute allowance is spent on; the
//! costs are the run's `gmail::QuotaTable` (2026: messages.get 20, threads.get
//! 40; 2025: 5 and 10; both: threads.list 10, messages.list 5, history.list 2,
//! labels.list 1, getProfile 1).
//!
//! - listing: getProfile 1, threads.list 10 per page of up to 500 threads,
//!   plus, when some listed thread has no row (or, see below, a stored one
//!   changed), messages.list 5 per page of 500 ids, once per run;
//! - a thread without a row: one messages.get raw per message in the window
//!   (its labels come with it), no threads.get;
//! - an unchanged thread: nothing beyond its share of threads.list (with
//!   `--include-spam-trash`, every stored thread is looked at again: what a
//!   thread's row vouches for is the default scope);
//! - a stored thread whose historyId changed (or that is not known current
//!   for the window) needs its new messages and its stored messages' current
//!   labels. How it gets them is decided per run from the table: **when one
//!   threads.get costs more than two pages of messages.list** (2026: 40 > 10),
//!   the new messages come from the run's messages.list and the labels from
//!   the run's label source (`label_source.rs`), built once, on first need:
//!   history.list from the mailbox's cursor (2 per page of 500 records), or,
//!   without a usable cursor, labels.list 1 plus messages.list 5 per page of
//!   500 ids per label over the window. Otherwise (2025: 10 = 10) the thread
//!   goes through threads.get minimal, 10 whatever its size, which says both
//!   at once (messages.get minimal per stored message would cost 5 each).
//!   Either way each message not stored costs one messages.get raw. On the
//!   dear table, a stored thread messages.list did not show (its mail came or
//!   went between the listings) still goes through threads.get.
//!
//! Why that bound: the label source usually costs a history page or two, and
//! the window's messages.list pages are paid anyway as soon as one thread is
//! new; a threads.get dearer than two list pages loses from the first changed
//! thread on, while on the 2025 table threads.get is no dearer and keeps its
//! figures. Where the bound is wrong: a re-run of a very large window in
//! which nothing is new but one stored thread was relabelled lists the whole
//! window (5 per 500 ids) to save one threads.get, and without a usable
//! cursor the per-label listing costs 5 a label and pays off only from a
//! handful of changed threads on. Choosing per run from the window's size and
//! the number of changed threads is left for later.
//!
//! A listing per label knows the window's messages only: a changed stored
//! thread that also holds stored messages outside the window goes through
//! threads.get on that path, or those messages' labels would stay stale under
//! a historyId that vouches for them.
//!
//! So, per table (listing: getProfile, threads.list pages, and messages.list
//! pages when some thread is new or changed):
//!
//! | run | 2026 | 2025 |
//! |---|---|---|
//! | first backfill of M messages | 20M + listing, ≤ 20.05 a message | 5M + listing, ≤ 5.05 a message |
//! | unchanged re-run | listing only (getProfile, threads.list) | the same |
//! | K new messages, L stored threads relabelled | 20K + listing + 2 per history page (or 1 + the per-label listing), no threads.get | 5K + 10L + listing |
//!
//! (A first backfill's listing is 5 per 500 ids plus 10 per 500 threads, at
//! most 0.03 a message with full pages; the bound holds from about a thousand
//! messages up. The 59 messages of `tests/quota.rs` cost 20.27 and 5.27 a
//! message.) `tests/quota.rs` checks these on both tables through the
//! emulator's counters.

use std::collections::HashMap;

use chrono::{TimeDelta, Utc};
use futures::{FutureExt, StreamExt, TryStreamExt};
use gmail::ListQuery;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::label_source::{LazyLabelSource, labels_without_threads_get};
use super::run::{BodyEnd, Run, RunPlan, Stage};
use super::thread_fetch::ListedThread;
use super::writer::{QueueBudget, QueuedWork};
use super::{Engine, EngineError, MailboxRef, Progress};
use crate::domain::{Coverage, RunKind, RunSummary, Window};
use crate::repo::{CursorUpdate, HistoryCursor, as_i64};

/// What to back up.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub mailbox: MailboxRef,
    pub window: Window,
    pub include_spam_trash: bool,
}

/// Changed threads queued between the lister and the fetchers.
const THREAD_QUEUE: usize = 256;

impl Engine {
    /// Backs up a window: one run, from lease to summary.
    pub async fn backfill(
        &self,
        request: BackfillRequest,
        cancel: CancellationToken,
        progress: &Progress,
    ) -> Result<RunSummary, EngineError> {
        let email = request.mailbox.email();
        let api_before = self.gmail.mailbox_metrics(email);
        // The cursor is read before listing: whatever arrives during the
        // backfill is then picked up by the next incremental sync.
        let profile = self.gmail.profile(email).await?;
        let cursor = HistoryCursor(profile.history_id);
        let plan = RunPlan {
            kind: RunKind::Backfill,
            mailbox: request.mailbox.clone(),
            window: Some(request.window),
            start_history_id: Some(cursor),
            include_spam_trash: request.include_spam_trash,
            api_before,
        };
        let window = request.window;
        let cancel = &cancel;
        self.run(plan, cancel, |run| async move {
            // Without a cursor no later sync can learn what was deleted
            // before this run (after an import, say): the window's rows are
            // accounted for against Gmail's listing (`vanished.rs`).
            let stored_cursor = self
                .riding_out("read cursor", || async {
                    Ok(self.repo.mailbox_cursor(run.mailbox_id()).await?)
                })
                .await?;
            let live = self
                .rows_to_account_for(&run, window, stored_cursor.is_some())
                .await?;
            self.ingest_window(&run, window, cancel, progress).await?;
            if !cancel.is_cancelled() {
                self.settle_vanished(&run, window, live).await?;
            }
            Ok(BodyEnd {
                cursor: CursorUpdate::IfAbsent(cursor),
                window: Some(window),
                history_expired: false,
            })
        })
        .await
    }

    /// The pipeline over one window; shared by backfill and the sync fallback.
    /// Every batch's counts land in the run's as it commits, so a run that
    /// fails half-way still reports (and records) what it wrote.
    pub(crate) async fn ingest_window(
        &self,
        run: &Run,
        window: Window,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<(), EngineError> {
        let (thread_tx, thread_rx) = mpsc::channel::<ListedThread>(THREAD_QUEUE);
        // Fetched work waits for the writer under a budget of messages, not
        // threads (a thread may hold hundreds): two batches, so fetching goes
        // on while a batch commits, and memory stays bounded whatever the mailbox.
        let budget = QueueBudget::new(2 * self.options.batch_messages);
        let (work_tx, work_rx) = mpsc::channel::<QueuedWork>(budget.capacity());

        // What a thread complete within this window is recorded with. A
        // window reaching the present is open at the top: newer mail changes
        // the thread's historyId anyway, and re-runs (whose window ends later)
        // must still find the thread current.
        let covered = Coverage {
            since: Some(window.since),
            until: (window.until < Utc::now() - TimeDelta::minutes(5)).then_some(window.until),
        };
        let lister = self.list_changed_threads(run, window, thread_tx, cancel, progress);
        let labels = &LazyLabelSource::new(window);
        let fetchers = async move {
            tokio_stream_from(thread_rx)
                .map(|listed: ListedThread| {
                    let work_tx = work_tx.clone();
                    let budget = budget.clone();
                    async move {
                        if cancel.is_cancelled() {
                            return Ok(());
                        }
                        let work = self
                            .fetch_thread(run, listed, window, covered, labels, progress)
                            .await?;
                        // Sent from inside the future, after its database
                        // connection is back in the pool: a full queue then
                        // parks only finished work, never a held connection.
                        if let Some(work) = work {
                            let queued = budget.admit(work).await?;
                            // The writer only stops early on error; that error wins.
                            let _ = work_tx.send(queued).await;
                        }
                        Ok::<(), EngineError>(())
                    }
                    .boxed()
                })
                .buffer_unordered(self.options.threads_in_flight)
                .try_for_each(|()| async { Ok(()) })
                .await
        };
        let mut writer = std::pin::pin!(self.write_threads(run, work_rx, progress));
        let mut front = Box::pin(async move { tokio::try_join!(lister, fetchers) });
        let listed = tokio::select! {
            listed = &mut front => {
                // Closes the work queue: the writer commits what is queued and ends.
                drop(front);
                match listed {
                    Ok((listed, ())) => {
                        writer.await?;
                        listed
                    }
                    Err(err) => {
                        // The lister or a fetcher failed (a quota day spent, Gmail
                        // gone): the writer still finishes the commit in flight and
                        // what was fetched, so the run's counts are exactly what it
                        // wrote (dropping it mid-commit lost a committed batch's
                        // counts). The first failure is what the run reports.
                        if let Err(after) = writer.await {
                            tracing::debug!(error = %after, "the writer failed too");
                        }
                        return Err(err);
                    }
                }
            }
            written = &mut writer => {
                // The writer fails first (the lease lost, the database gone):
                // listing and fetching stop as `front` is dropped.
                written?;
                front.await?.0
            }
        };
        info!(
            threads_listed = listed.listed,
            threads_unchanged = listed.unchanged,
            "window done"
        );
        Ok(())
    }

    /// Pages through threads.list for the window and sends every thread not
    /// known current for it. New threads wait for messages.list, which says
    /// which of their messages are in the window; so do stored ones when the
    /// run learns labels from its label source, else they go at once (to
    /// threads.get). Threads waiting are held in memory, about 100 bytes each.
    async fn list_changed_threads(
        &self,
        run: &Run,
        window: Window,
        tx: mpsc::Sender<ListedThread>,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Listed, EngineError> {
        let query = ListQuery {
            after: Some(window.after_secs()),
            before: Some(window.before_secs()),
            include_spam_trash: run.include_spam_trash(),
            ..ListQuery::default()
        };
        let mut pages = self.gmail.list_threads(run.mailbox(), query.clone());
        let mut listed = Listed::default();
        let stored_wait = labels_without_threads_get(self.gmail.quota_table());
        let mut waiting: Vec<ListedThread> = Vec::new();
        while let Some(page) = run.timed(Stage::List, pages.next()).await {
            if cancel.is_cancelled() {
                return Ok(listed);
            }
            let page = page?;
            let ids: Vec<String> = page.threads.iter().map(|t| t.id.clone()).collect();
            let stored = run
                .timed(
                    Stage::List,
                    self.riding_out("read thread history ids", || async {
                        Ok(self.repo.thread_history_ids(run.mailbox_id(), &ids).await?)
                    }),
                )
                .await?;
            Progress::add(&progress.threads_listed, page.threads.len() as u64);
            let mut page_listed = Listed {
                listed: page.threads.len() as u64,
                unchanged: 0,
            };
            let mut changed = Vec::new();
            for thread in page.threads {
                let row = stored.get(&thread.id);
                // A recorded coverage is for the default scope: a run that
                // also backs up SPAM and TRASH looks at every stored thread
                // again (threads.get), or it would skip the spam of threads
                // a default run completed.
                let current = !run.include_spam_trash()
                    && row.is_some_and(|s| {
                        s.history_id == as_i64("historyId", thread.history_id).ok()
                            && s.coverage.covers(window.since, window.until)
                    });
                if current {
                    page_listed.unchanged += 1;
                    continue;
                }
                let listed_thread = ListedThread {
                    id: thread.id,
                    snippet: Some(thread.snippet),
                    history_id: thread.history_id,
                    stored: row.is_some(),
                    window_messages: None,
                };
                if listed_thread.stored && !stored_wait {
                    changed.push(listed_thread);
                } else {
                    waiting.push(listed_thread);
                }
            }
            // Unchanged threads are settled as they are listed: count them now.
            run.count(|t| {
                t.threads_listed += page_listed.listed;
                t.threads.unchanged += page_listed.unchanged;
            });
            listed.listed += page_listed.listed;
            listed.unchanged += page_listed.unchanged;
            for thread in changed {
                Progress::add(&progress.threads_changed, 1);
                if tx.send(thread).await.is_err() {
                    // Fetchers stopped (an error is on its way); stop listing.
                    return Ok(listed);
                }
            }
        }
        if !waiting.is_empty() && !cancel.is_cancelled() {
            let mut by_thread = run
                .timed(Stage::List, self.window_messages(run, query))
                .await?;
            for mut thread in waiting {
                // A thread messages.list did not show (its mail arrived or
                // left between the listings) is asked with threads.get.
                thread.window_messages = by_thread.remove(&thread.id);
                Progress::add(&progress.threads_changed, 1);
                if tx.send(thread).await.is_err() {
                    return Ok(listed);
                }
            }
        }
        progress
            .listing_done
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(listed)
    }

    /// The window's message ids by thread, from messages.list (5 units per
    /// 500 ids). Held in memory: about 100 bytes a message in the window.
    async fn window_messages(
        &self,
        run: &Run,
        query: ListQuery,
    ) -> Result<HashMap<String, Vec<String>>, EngineError> {
        let mut by_thread: HashMap<String, Vec<String>> = HashMap::new();
        let mut pages = self.gmail.list_messages(run.mailbox(), query);
        while let Some(page) = pages.next().await {
            for m in page?.messages {
                by_thread.entry(m.thread_id).or_default().push(m.id);
            }
        }
        Ok(by_thread)
    }
}

#[derive(Debug, Default)]
struct Listed {
    listed: u64,
    unchanged: u64,
}

/// A stream over an mpsc receiver (what tokio-stream's wrapper does).
fn tokio_stream_from<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
