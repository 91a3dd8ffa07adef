//! The run lifecycle, in one place: start (lease + `sync.started`), heartbeat,
//! the fence every write presents, and finish (status, counts, terminal event,
//! cursor). Backfill and sync are bodies handed to [`Engine::run`]; they never
//! start, fence or finish a run themselves.
//!
//! A run that started always ends recorded (completed, failed or interrupted)
//! unless the process dies, and then the next run marks it interrupted. A run
//! that loses its mailbox to another run (its lock connection dropped and the
//! lease was taken over) commits nothing more: every write transaction proves
//! the lease inside itself, and so does the finish. It ends with
//! [`EngineError::LeaseLost`].

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use gmail::GmailError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::outage::Outage;
use super::summary::{RunSummary, StageSeconds, Tally, api_delta};
use super::{Engine, EngineError, MailboxRef, Window};
use crate::anchor::AnchorRecord;
use crate::repo::{
    CursorUpdate, Fence, HistoryCursor, RepoError, Repository, RunEnd, RunKind, RunStart, RunStatus,
};

/// How often a live run proves it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// What a run is asked to do before its body runs.
#[derive(Debug, Clone)]
pub(crate) struct RunPlan {
    pub kind: RunKind,
    pub mailbox: MailboxRef,
    /// The window it backs up, when known up front.
    pub window: Option<Window>,
    /// The cursor it starts from (sync) or will establish (backfill).
    pub start_history_id: Option<HistoryCursor>,
    pub include_spam_trash: bool,
    /// The client's counters when the command began, so the summary's API
    /// usage includes calls made before the run started (getProfile).
    pub api_before: gmail::ApiMetrics,
}

/// How a body that did not fail ends its run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunEnding {
    /// What completing the run does to the cursor (ignored unless it completes).
    pub cursor: CursorUpdate,
    /// The window it backed up, if any.
    pub window: Option<Window>,
    /// A sync found its history expired and fell back to a window.
    pub history_expired: bool,
}

/// A live run as its body sees it: who it is, and the counts committed so far.
#[derive(Clone)]
pub(crate) struct Run(Arc<RunState>);

struct RunState {
    fence: Fence,
    mailbox: String,
    include_spam_trash: bool,
    committed: Mutex<Tally>,
    /// Messages in a row whose retries ran out (reset by any fetch that works).
    unavailable_streak: AtomicU32,
    /// Messages the quarantine still holds after this run's retry pass.
    quarantined: OnceLock<HashSet<String>>,
    /// Busy nanoseconds per [`Stage`].
    stages: [AtomicU64; Stage::COUNT],
}

/// Where a run spends its time, as the summary reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage {
    /// threads.list, messages.list, history.list and the lookups deciding what changed.
    List = 0,
    /// threads.get and messages.get.
    Fetch = 1,
    /// MIME parsing.
    Parse = 2,
    /// Blob puts and the store's sync before a batch commits.
    Store = 3,
    /// The batch transactions.
    Write = 4,
}

impl Stage {
    const COUNT: usize = 5;
}

impl Run {
    pub fn id(&self) -> i64 {
        self.0.fence.run_id
    }

    pub fn mailbox_id(&self) -> i64 {
        self.0.fence.mailbox_id
    }

    /// The mailbox's address.
    pub fn mailbox(&self) -> &str {
        &self.0.mailbox
    }

    pub fn include_spam_trash(&self) -> bool {
        self.0.include_spam_trash
    }

    pub fn fence(&self) -> Fence {
        self.0.fence
    }

    /// Whether the quarantine holds this message: its retries (with their
    /// backoff and bound) are the quarantine's, so listings leave it alone.
    pub fn is_quarantined(&self, provider_message_id: &str) -> bool {
        self.0
            .quarantined
            .get()
            .is_some_and(|q| q.contains(provider_message_id))
    }

    /// Set once, after the retry pass.
    pub(crate) fn set_quarantined(&self, ids: HashSet<String>) {
        let _ = self.0.quarantined.set(ids);
    }

    /// Runs `work`, adding its wall time to `stage` (concurrent work adds up,
    /// so a stage's seconds may exceed the run's).
    pub(crate) async fn timed<T>(&self, stage: Stage, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = work.await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.0.stages[stage as usize].fetch_add(nanos, Ordering::Relaxed);
        out
    }

    /// Busy seconds per stage so far.
    pub fn stages(&self) -> StageSeconds {
        let s = |stage: Stage| self.0.stages[stage as usize].load(Ordering::Relaxed) as f64 / 1e9;
        StageSeconds {
            list: s(Stage::List),
            fetch: s(Stage::Fetch),
            parse: s(Stage::Parse),
            store: s(Stage::Store),
            write: s(Stage::Write),
        }
    }

    /// A message fetch worked: whatever failed before was not Gmail being down.
    pub fn note_fetched(&self) {
        self.0.unavailable_streak.store(0, Ordering::Relaxed);
    }

    /// A message's retries ran out; returns how many did in a row.
    pub fn note_unavailable(&self) -> u32 {
        self.0.unavailable_streak.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The counts of everything committed (and listed) so far.
    pub fn counted(&self) -> Tally {
        self.tally().clone()
    }

    /// Adds counts: a committed batch's, or work that commits nothing (listing).
    pub fn count(&self, f: impl FnOnce(&mut Tally)) {
        f(&mut self.tally());
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        // Counters stay meaningful after a panic elsewhere: take them as they are.
        self.0
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Engine {
    /// Runs `body` as one recorded run of the planned mailbox, from lease to
    /// summary. The body's error fails the run; a cancelled body interrupts it.
    pub(crate) async fn run<F, Fut>(
        &self,
        plan: RunPlan,
        cancel: &CancellationToken,
        body: F,
    ) -> Result<RunSummary, EngineError>
    where
        F: FnOnce(Run) -> Fut,
        Fut: Future<Output = Result<RunEnding, EngineError>> + Send,
    {
        let started = Instant::now();
        let (mailbox_id, mailbox) = self.resolve(&plan.mailbox).await?;
        let held = self
            .repo
            .start_run(&RunStart {
                mailbox_id,
                kind: plan.kind,
                window: plan.window,
                start_history_id: plan.start_history_id,
                stale_after: self.options.lease,
            })
            .await
            .map_err(|e| lease_error(e, &mailbox))?;
        let fence = held.fence;
        let run = Run(Arc::new(RunState {
            fence,
            mailbox: mailbox.clone(),
            include_spam_trash: plan.include_spam_trash,
            committed: Mutex::new(Tally::default()),
            unavailable_streak: AtomicU32::new(0),
            quarantined: OnceLock::new(),
            stages: Default::default(),
        }));
        let heartbeat = Heartbeat::start(self.repo.clone(), fence);
        // Quarantined messages first: the oldest debt of the mailbox.
        let result = match self.retry_quarantined(&run, cancel).await {
            Ok(()) => body(run.clone()).await,
            Err(e) => Err(e),
        };
        drop(heartbeat);

        if let Err(EngineError::Repo(RepoError::LeaseLost { .. })) = &result {
            // The run that took over already ended this one; finishing would be fenced out too.
            return Err(lease_error(
                RepoError::LeaseLost {
                    run_id: fence.run_id,
                },
                &mailbox,
            ));
        }
        let tally = run.counted();
        // The project's quota day is spent: not a failure of this mailbox. What
        // was committed stays, and the next run after midnight Pacific resumes.
        let quota_day = match &result {
            Err(EngineError::Gmail(GmailError::QuotaDayExhausted { resets_in, .. })) => {
                Some(*resets_in)
            }
            _ => None,
        };
        let (status, cursor, error) = match &result {
            Ok(_) if cancel.is_cancelled() => (RunStatus::Interrupted, CursorUpdate::Keep, None),
            Ok(ending) => (RunStatus::Completed, ending.cursor, None),
            Err(e) if quota_day.is_some() => {
                warn!(mailbox = %mailbox, "{e}; stopped: committed batches are kept, messages fetched but not yet committed are fetched again after the quota day rolls over");
                (
                    RunStatus::Interrupted,
                    CursorUpdate::Keep,
                    Some(e.to_string()),
                )
            }
            Err(e) => (RunStatus::Failed, CursorUpdate::Keep, Some(e.to_string())),
        };
        // What the run spent goes on its row too: `status` sums a quota day's.
        let api = api_delta(&self.gmail.mailbox_metrics(&mailbox), &plan.api_before);
        let mut counts = tally.to_json()?;
        if let Some(counts) = counts.as_object_mut() {
            counts.insert("quota_units".into(), api.total.quota_units.into());
        }
        let end = RunEnd {
            status,
            counts,
            error: error.clone(),
            cursor,
        };
        let mut held = held;
        let mut outage = Outage::new(self.options.db_outage);
        loop {
            match self.repo.finish_run(&mut held, &end).await {
                Ok(()) => break,
                Err(e) => {
                    let e = lease_error(e, &mailbox);
                    if !outage.wait_to_retry("finish run", &e).await {
                        return Err(e);
                    }
                }
            }
        }

        let (window, history_expired) = match &result {
            Ok(ending) => (ending.window, ending.history_expired),
            Err(_) => (plan.window, false),
        };
        let cursor = self
            .riding_out("read cursor", || async {
                Ok(self.repo.mailbox_cursor(mailbox_id).await?)
            })
            .await?;
        let ledger_head = self
            .riding_out("read ledger head", || async {
                Ok(self.repo.ledger_head(mailbox_id).await?)
            })
            .await?;
        let anchor_error = match (&self.options.anchor, &ledger_head) {
            (Some(target), Some(head)) => target
                .append(&AnchorRecord::new(&self.org, &mailbox, fence.run_id, head))
                .await
                .err()
                .map(|e| {
                    error!(run_id = fence.run_id, error = %e, "could not anchor the ledger head");
                    e.to_string()
                }),
            _ => None,
        };
        Ok(RunSummary {
            run_id: fence.run_id,
            mailbox,
            kind: plan.kind,
            status,
            window,
            tally,
            history_expired,
            cursor: cursor.map(|c| c.to_string()),
            api,
            duration_ms: started.elapsed().as_millis() as u64,
            stages: run.stages(),
            error,
            quota_day_resets_in_secs: quota_day.map(|d| d.as_secs()),
            ledger_head,
            anchor_error,
        })
    }
}

/// The repository's lease answers, named for the operator.
fn lease_error(err: RepoError, mailbox: &str) -> EngineError {
    match err {
        RepoError::Locked {
            run_id,
            heartbeat_age_secs,
        } => EngineError::Locked {
            mailbox: mailbox.to_owned(),
            run_id,
            heartbeat_age_secs,
        },
        RepoError::LeaseLost { run_id } => EngineError::LeaseLost {
            mailbox: mailbox.to_owned(),
            run_id,
        },
        other => EngineError::Repo(other),
    }
}

/// Proves the run alive every few seconds until dropped.
struct Heartbeat(JoinHandle<()>);

impl Heartbeat {
    fn start(repo: Arc<dyn Repository>, fence: Fence) -> Self {
        Heartbeat(tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                match repo.heartbeat(fence).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // The fence stops its next commit; nothing to beat for.
                        warn!(run_id = fence.run_id, "run no longer holds its mailbox");
                        return;
                    }
                    Err(err) => warn!(run_id = fence.run_id, error = %err, "heartbeat failed"),
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
