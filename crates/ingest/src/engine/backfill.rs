//! The windowed backfill: list threads in a window, fetch what changed, write.
//!
//! Three stages overlap through bounded channels, so memory stays bounded
//! whatever the mailbox size: the lister pages through threads.list and drops
//! every thread whose stored historyId equals the listed one; fetchers (bounded
//! concurrency, the client's quota limiter) turn changed threads into
//! `ThreadWork`; the writer commits them in batches.

use std::sync::Mutex;
use std::time::Instant;

use futures::{FutureExt, StreamExt, TryStreamExt};
use gmail::ListQuery;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::run::{CursorUpdate, RunKind, RunLease, RunStatus};
use super::summary::{RunSummary, Tally};
use super::thread_fetch::{ListedThread, RunContext};
use super::writer::{QueueBudget, QueuedWork};
use super::{Engine, EngineError, Progress, Window};
use crate::repo;

/// What to back up.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub mailbox: String,
    pub window: Window,
    pub include_spam_trash: bool,
}

/// Changed threads queued between the lister and the fetchers.
const THREAD_QUEUE: usize = 256;

impl Engine {
    /// Runs a backfill from start to summary. A run that started always ends
    /// recorded (completed, failed or interrupted) unless the process dies,
    /// and then the next run marks it interrupted.
    pub async fn backfill(
        &self,
        request: BackfillRequest,
        cancel: CancellationToken,
        progress: &Progress,
    ) -> Result<RunSummary, EngineError> {
        let started = Instant::now();
        let metrics_before = self.gmail.mailbox_metrics(&request.mailbox.to_lowercase());
        let mailbox = request.mailbox.to_lowercase();
        let mailbox_id = self.register_mailbox(&mailbox).await?;
        // The cursor is read before listing: whatever arrives during the
        // backfill is then picked up by the next incremental sync.
        let profile = self.gmail.profile(&mailbox).await?;
        let lease = RunLease::acquire(
            &self.pool,
            mailbox_id,
            &mailbox,
            RunKind::Backfill,
            Some(request.window),
            Some(profile.history_id),
            self.options.lease,
        )
        .await?;
        let ctx = RunContext {
            run_id: lease.run_id,
            mailbox_id,
            mailbox: mailbox.clone(),
            include_spam_trash: request.include_spam_trash,
        };
        let committed = Mutex::new(Tally::default());
        let result = self
            .ingest_window(&ctx, &lease, request.window, &cancel, progress, &committed)
            .await;
        let (status, tally, error) = match result {
            Ok(tally) if cancel.is_cancelled() => (RunStatus::Interrupted, tally, None),
            Ok(tally) => (RunStatus::Completed, tally, None),
            Err(e) => (
                RunStatus::Failed,
                committed.into_inner().unwrap_or_default(),
                Some(e.to_string()),
            ),
        };
        let cursor = match status {
            RunStatus::Completed => CursorUpdate::IfAbsent(profile.history_id),
            _ => CursorUpdate::Keep,
        };
        let run_id = lease.run_id;
        lease
            .finish(
                status,
                serde_json::to_value(&tally).unwrap_or_default(),
                error.clone(),
                cursor,
            )
            .await?;
        let api = super::summary::api_delta(&self.gmail.mailbox_metrics(&mailbox), &metrics_before);
        Ok(RunSummary {
            run_id,
            mailbox,
            kind: RunKind::Backfill.as_str(),
            status: status.as_str(),
            window: Some(request.window),
            tally,
            history_expired: false,
            cursor: Some(profile.history_id.to_string()),
            api,
            duration_ms: started.elapsed().as_millis() as u64,
            error,
        })
    }

    /// Inserts the mailbox row if it is new; returns its id.
    pub(crate) async fn register_mailbox(&self, mailbox: &str) -> Result<i64, EngineError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(EngineError::db("acquire connection"))?;
        Ok(repo::pg::upsert_mailbox(&mut conn, &self.org, mailbox)
            .await?
            .0)
    }

    /// The pipeline over one window; shared by backfill and the sync fallback.
    ///
    /// `committed` holds the counts of every batch committed so far, so a run
    /// that fails half-way still reports (and records) what it wrote.
    pub(crate) async fn ingest_window(
        &self,
        ctx: &RunContext,
        lease: &RunLease,
        window: Window,
        cancel: &CancellationToken,
        progress: &Progress,
        committed: &Mutex<Tally>,
    ) -> Result<Tally, EngineError> {
        let (thread_tx, thread_rx) = mpsc::channel::<ListedThread>(THREAD_QUEUE);
        // Fetched work waits for the writer under a budget of messages, not
        // threads (a thread may hold hundreds): two batches, so fetching goes
        // on while a batch commits, and memory stays bounded whatever the mailbox.
        let budget = QueueBudget::new(2 * self.options.batch_messages);
        let (work_tx, work_rx) = mpsc::channel::<QueuedWork>(budget.capacity());

        let lister = self.list_changed_threads(ctx, window, thread_tx, cancel, progress);
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
                            .fetch_thread(ctx, listed, Some(window), progress)
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
        let writer = self.write_threads(ctx, lease, work_rx, progress, committed);
        let (listed, (), ()) = tokio::try_join!(lister, fetchers, writer)?;
        let mut tally = committed.lock().map(|t| t.clone()).unwrap_or_default();
        tally.threads_listed = listed.listed;
        tally.threads.unchanged += listed.unchanged;
        info!(
            threads_listed = listed.listed,
            threads_unchanged = listed.unchanged,
            "window done"
        );
        Ok(tally)
    }

    /// Pages through threads.list for the window and sends every thread whose
    /// stored historyId differs from the listed one.
    async fn list_changed_threads(
        &self,
        ctx: &RunContext,
        window: Window,
        tx: mpsc::Sender<ListedThread>,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<Listed, EngineError> {
        let query = ListQuery {
            after: Some(window.after_secs()),
            before: Some(window.before_secs()),
            include_spam_trash: ctx.include_spam_trash,
            ..ListQuery::default()
        };
        let mut pages = self.gmail.list_threads(&ctx.mailbox, query);
        let mut listed = Listed::default();
        while let Some(page) = pages.next().await {
            if cancel.is_cancelled() {
                break;
            }
            let page = page?;
            let ids: Vec<String> = page.threads.iter().map(|t| t.id.clone()).collect();
            let stored = {
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .map_err(EngineError::db("acquire connection"))?;
                repo::pg::thread_history_ids(&mut conn, ctx.mailbox_id, &ids).await?
            };
            Progress::add(&progress.threads_listed, page.threads.len() as u64);
            listed.listed += page.threads.len() as u64;
            for thread in page.threads {
                let row = stored.get(&thread.id).copied();
                if row.flatten() == Some(super::run::history_i64(thread.history_id)?) {
                    listed.unchanged += 1;
                    continue;
                }
                Progress::add(&progress.threads_changed, 1);
                let changed = ListedThread {
                    id: thread.id,
                    snippet: Some(thread.snippet),
                    stored: row.is_some(),
                };
                if tx.send(changed).await.is_err() {
                    // Fetchers stopped (an error is on its way); stop listing.
                    return Ok(listed);
                }
            }
        }
        progress
            .listing_done
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(listed)
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
