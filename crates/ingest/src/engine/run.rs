//! A run as the engines see it: [`Engine::run`] starts it ([`RunLease`]),
//! hands a [`Run`] to the body (backfill or sync), closes it from what the
//! body returned ([`BodyEnd`] or an error) and summarises it. The bodies never
//! start, fence or finish a run themselves; the lease, heartbeat, fence and
//! finish are [`RunLease`]'s.
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
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::lease::{RunLease, is_lease_lost};
use super::summary::{api_delta, run_counts};
use super::{Engine, EngineError, MailboxRef};
use crate::anchor::AnchorRecord;
use crate::domain::{RunKind, RunStatus, RunSummary, StageSeconds, Tally, Window};
use crate::repo::{CursorUpdate, Fence, HistoryCursor, RunEnd, RunStart};

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

/// What a body that did not fail hands back to close its run with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyEnd {
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
    /// The mailbox's labels as labels.list gave them at the run's start.
    labels: OnceLock<Vec<gmail::Label>>,
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

    /// Set once, by the label refresh at the run's start.
    pub(crate) fn set_labels(&self, labels: Vec<gmail::Label>) {
        let _ = self.0.labels.set(labels);
    }

    /// The labels labels.list gave at the run's start, if it was asked.
    pub(crate) fn listed_labels(&self) -> Option<&[gmail::Label]> {
        self.0.labels.get().map(Vec::as_slice)
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
    /// Runs `body` as one recorded run of the planned mailbox: start (the
    /// lease), body, finish, summarise. The body's error fails the run; a
    /// cancelled body interrupts it.
    pub(crate) async fn run<F, Fut>(
        &self,
        plan: RunPlan,
        cancel: &CancellationToken,
        body: F,
    ) -> Result<RunSummary, EngineError>
    where
        F: FnOnce(Run) -> Fut,
        Fut: Future<Output = Result<BodyEnd, EngineError>> + Send,
    {
        let started = Instant::now();
        let (mailbox_id, mailbox) = self.resolve(&plan.mailbox).await?;
        let mailbox = mailbox.into_string();
        let lease = RunLease::start(
            self.repo.clone(),
            &RunStart {
                mailbox_id,
                kind: plan.kind,
                window: plan.window,
                start_history_id: plan.start_history_id,
                stale_after: self.options.lease,
            },
            &mailbox,
            self.options.db_outage,
        )
        .await?;
        let run = Run(Arc::new(RunState {
            fence: lease.fence(),
            mailbox: mailbox.clone(),
            include_spam_trash: plan.include_spam_trash,
            committed: Mutex::new(Tally::default()),
            unavailable_streak: AtomicU32::new(0),
            quarantined: OnceLock::new(),
            labels: OnceLock::new(),
            stages: Default::default(),
        }));
        // The labels' names first (every later write may name one), then
        // quarantined messages: the oldest debt of the mailbox.
        let result = match self.refresh_labels(&run).await {
            Ok(()) => match self.retry_quarantined(&run, cancel).await {
                Ok(()) => body(run.clone()).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };

        if let Err(EngineError::Repo(e)) = &result
            && is_lease_lost(e)
        {
            return Err(lease.lost());
        }
        let close = RunClose::of(&result, &plan, cancel, &mailbox);
        // What the run spent goes on its row too: `status` sums a quota day's.
        let api = api_delta(&self.gmail.mailbox_metrics(&mailbox), &plan.api_before);
        let tally = run.counted();
        lease.finish(&close.run_end(&tally, &api)?).await?;
        self.summarise(&run, plan.kind, close, tally, api, started)
            .await
    }

    /// The summary of a finished run, with the mailbox's cursor and ledger
    /// head as the finish left them (the head anchored, if asked).
    async fn summarise(
        &self,
        run: &Run,
        kind: RunKind,
        close: RunClose,
        tally: Tally,
        api: gmail::ApiMetrics,
        started: Instant,
    ) -> Result<RunSummary, EngineError> {
        let (run_id, mailbox_id, mailbox) = (run.id(), run.mailbox_id(), run.mailbox());
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
        // gc proves its database is not behind the store by these (crate::heads).
        if let Some(head) = &ledger_head
            && let Err(e) = crate::heads::leave(&self.store, &self.org, mailbox, run_id, head).await
        {
            error!(run_id, error = %e, "could not leave the ledger head in the store");
        }
        let anchor_error = match (&self.options.anchor, &ledger_head) {
            (Some(target), Some(head)) => target
                .append(&AnchorRecord::new(&self.org, mailbox, run_id, head))
                .await
                .err()
                .map(|e| {
                    error!(run_id, error = %e, "could not anchor the ledger head");
                    e.to_string()
                }),
            _ => None,
        };
        Ok(RunSummary {
            run_id,
            mailbox: mailbox.to_owned(),
            kind,
            status: close.status,
            window: close.window,
            tally,
            history_expired: close.history_expired,
            cursor: cursor.map(|c| c.to_string()),
            api,
            duration_ms: started.elapsed().as_millis() as u64,
            stages: run.stages(),
            error: close.error,
            quota_day_resets_in_secs: close.quota_day_resets_in.map(|d| d.as_secs()),
            ledger_head,
            anchor_error,
        })
    }
}

/// How a run that still holds its mailbox is closed, decided from what its
/// body returned: what its finish records, and what its summary reports.
struct RunClose {
    status: RunStatus,
    cursor: CursorUpdate,
    error: Option<String>,
    /// The project's quota day stopped the run; it resets after this long.
    quota_day_resets_in: Option<Duration>,
    /// The window the run backed up (the body's, or the plan's if it failed).
    window: Option<Window>,
    /// A sync found its history expired and fell back to a window.
    history_expired: bool,
}

impl RunClose {
    fn of(
        result: &Result<BodyEnd, EngineError>,
        plan: &RunPlan,
        cancel: &CancellationToken,
        mailbox: &str,
    ) -> RunClose {
        let (window, history_expired) = match result {
            Ok(end) => (end.window, end.history_expired),
            Err(_) => (plan.window, false),
        };
        let close = |status, cursor, error: Option<&EngineError>| RunClose {
            status,
            cursor,
            error: error.map(ToString::to_string),
            quota_day_resets_in: None,
            window,
            history_expired,
        };
        match result {
            Ok(_) if cancel.is_cancelled() => {
                close(RunStatus::Interrupted, CursorUpdate::Keep, None)
            }
            Ok(end) => close(RunStatus::Completed, end.cursor, None),
            // The project's quota day is spent: not a failure of this mailbox.
            // What was committed stays, and the next run after midnight
            // Pacific resumes.
            Err(e @ EngineError::Gmail(GmailError::QuotaDayExhausted { resets_in, .. })) => {
                warn!(mailbox = %mailbox, "{e}; stopped: committed batches are kept, messages fetched but not yet committed are fetched again after the quota day rolls over");
                RunClose {
                    quota_day_resets_in: Some(*resets_in),
                    ..close(RunStatus::Interrupted, CursorUpdate::Keep, Some(e))
                }
            }
            Err(e) => close(RunStatus::Failed, CursorUpdate::Keep, Some(e)),
        }
    }

    /// What the finish records: this close, with the run's counts and the
    /// quota units it spent.
    fn run_end(&self, tally: &Tally, api: &gmail::ApiMetrics) -> Result<RunEnd, EngineError> {
        let mut counts = run_counts(tally)?;
        if let Some(counts) = counts.as_object_mut() {
            counts.insert("quota_units".into(), api.total.quota_units.into());
        }
        Ok(RunEnd {
            status: self.status,
            counts,
            error: self.error.clone(),
            cursor: self.cursor,
        })
    }
}
