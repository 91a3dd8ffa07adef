//! The worker loop: claim due mailboxes, sync each, schedule the next sync
//! from what the sync attempt came to ([`SyncAttempt`]), and, when a mailbox's
//! completeness check is due, compare it with Gmail both ways after its sync
//! and record what was found (`verify_runs`; `status` marks it degraded).
//!
//! The database is the only coordinator: due mailboxes of the worker's org are
//! claimed with `FOR UPDATE SKIP LOCKED`, so any number of workers on any
//! number of machines share the work without running one mailbox twice (the
//! run lease is the second guard). Cancelling stops claiming, lets in-flight
//! runs commit what they have and mark themselves interrupted, and returns.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::domain::{MailboxAddress, MailboxId, RunSummary, RunVerdict};
use crate::engine::{Engine, EngineError, MailboxRef, Progress, SyncRequest};
use crate::metrics::Metrics;
use crate::repo::{MailboxRow, NextSync, VerifyRun};
use crate::verify::{self, VerifyOptions};

/// How a worker schedules and paces its work.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Mailboxes synced at once by this worker.
    pub concurrency: usize,
    /// Time between syncs of one mailbox; `None`: each mailbox's own.
    pub interval: Option<Duration>,
    /// How often to look for due mailboxes.
    pub poll: Duration,
    /// Days backed up when a mailbox has no cursor or its history expired.
    pub fallback_days: u32,
    /// Stop after this many claim rounds that found work (tests, one-shot use).
    pub max_rounds: Option<u64>,
    /// How long a claimed mailbox is hidden from other workers while it runs.
    pub claim_hold: Duration,
    /// When a mailbox was busy (another run held it), try again after this.
    pub busy_retry: Duration,
    /// How often each mailbox is checked against Gmail (`verify --full`);
    /// `None`: never.
    pub verify_every: Option<Duration>,
    /// Where runs are counted (`worker --metrics-addr`).
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 4,
            interval: None,
            poll: Duration::from_secs(5),
            fallback_days: 7,
            max_rounds: None,
            // Just past the run lease (120 s): a worker killed mid-run leaves its
            // mailbox for about 3 minutes, after which another worker claims it
            // and takes the dead run over. A live long run is re-claimed every
            // few minutes meanwhile; that claim answers Busy at once (the lease).
            claim_hold: Duration::from_secs(180),
            busy_retry: Duration::from_secs(30),
            verify_every: Some(Duration::from_secs(86_400)),
            metrics: None,
        }
    }
}

/// What one sync attempt of a claimed mailbox came to, as the worker
/// schedules it: a run's verdict, or why no run happened (busy, failed start).
#[derive(Debug)]
pub enum SyncAttempt {
    /// The run completed (perhaps with skipped messages, listed in its summary).
    Synced(Box<RunSummary>),
    /// Another run holds the mailbox, or took it over mid-run: not a failure.
    Busy,
    /// Stopped by cancellation; due again at once so the next claim resumes it.
    Interrupted,
    /// The project's quota day is spent: due again when it rolls over (not a failure).
    QuotaDaySpent { resets_in: Duration },
    /// The run or its start failed; the mailbox backs off.
    Failed(String),
}

impl SyncAttempt {
    /// Classifies what `Engine::sync` returned.
    pub fn of(result: Result<RunSummary, EngineError>) -> SyncAttempt {
        match result {
            Ok(run) => match run.verdict() {
                RunVerdict::Completed | RunVerdict::CompletedWithSkips => {
                    SyncAttempt::Synced(Box::new(run))
                }
                RunVerdict::Interrupted => SyncAttempt::Interrupted,
                RunVerdict::QuotaDaySpent => SyncAttempt::QuotaDaySpent {
                    resets_in: Duration::from_secs(run.quota_day_resets_in_secs.unwrap_or(0)),
                },
                RunVerdict::Failed => {
                    SyncAttempt::Failed(run.error.unwrap_or_else(|| "run failed".into()))
                }
            },
            Err(EngineError::Locked { .. } | EngineError::LeaseLost { .. }) => SyncAttempt::Busy,
            // Spent before the run could start (its cursor read): the same wait.
            Err(EngineError::Gmail(gmail::GmailError::QuotaDayExhausted { resets_in, .. })) => {
                SyncAttempt::QuotaDaySpent { resets_in }
            }
            Err(e) => SyncAttempt::Failed(e.to_string()),
        }
    }

    /// When the mailbox is due again after this attempt.
    pub fn next_sync<'a>(&'a self, options: &WorkerOptions) -> NextSync<'a> {
        match self {
            SyncAttempt::Synced(_) => NextSync::AfterSuccess {
                interval: options.interval,
            },
            SyncAttempt::Failed(error) => NextSync::AfterFailure {
                error,
                interval: options.interval,
            },
            SyncAttempt::Busy => NextSync::Retry {
                after: options.busy_retry,
            },
            // A minute past midnight Pacific: clocks disagree by seconds.
            SyncAttempt::QuotaDaySpent { resets_in } => NextSync::Retry {
                after: *resets_in + Duration::from_secs(60),
            },
            SyncAttempt::Interrupted => NextSync::Retry {
                after: Duration::ZERO,
            },
        }
    }
}

/// What a worker did before it stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    /// Claim rounds that found work.
    pub rounds: u64,
    pub synced: u64,
    pub busy: u64,
    pub interrupted: u64,
    /// Syncs stopped because the project's quota day was spent.
    pub quota_day_spent: u64,
    pub failed: u64,
}

/// A worker over one engine (and so one org).
#[derive(Clone)]
pub struct Worker {
    engine: Engine,
    options: WorkerOptions,
}

impl Worker {
    pub fn new(engine: Engine, options: WorkerOptions) -> Self {
        Worker { engine, options }
    }

    /// Claims and syncs due mailboxes until cancelled (or `max_rounds`).
    pub async fn run(&self, cancel: CancellationToken) -> WorkerReport {
        let concurrency = self.options.concurrency.max(1);
        let slots = Arc::new(Semaphore::new(concurrency));
        let mut running: JoinSet<SyncAttempt> = JoinSet::new();
        let mut report = WorkerReport::default();
        info!(concurrency, org = %self.engine.org, "worker started");
        loop {
            if cancel.is_cancelled() {
                break;
            }
            if let Some(m) = &self.options.metrics {
                m.tick();
            }
            while let Some(done) = running.try_join_next() {
                tally(&mut report, done);
            }
            let free = slots.available_permits();
            if free > 0 {
                let claimed = match self
                    .engine
                    .repo
                    .claim_due(&self.engine.org, free, self.options.claim_hold)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        error!(error = %e, "claiming due mailboxes failed; retrying");
                        Vec::new()
                    }
                };
                if !claimed.is_empty() {
                    report.rounds += 1;
                }
                for mailbox in claimed {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    let worker = self.clone();
                    let cancel = cancel.clone();
                    running.spawn(async move {
                        let attempt = worker.sync_claimed(&mailbox, cancel).await;
                        drop(permit);
                        attempt
                    });
                }
            }
            if self
                .options
                .max_rounds
                .is_some_and(|max| report.rounds >= max)
            {
                break;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.options.poll) => {}
                Some(done) = running.join_next(), if !running.is_empty() => tally(&mut report, done),
            }
        }
        info!(
            in_flight = running.len(),
            "worker stopping: waiting for in-flight runs"
        );
        while let Some(done) = running.join_next().await {
            tally(&mut report, done);
        }
        info!(?report, "worker stopped");
        report
    }

    /// Syncs one claimed mailbox (by its id, as claimed) and schedules its next sync.
    pub async fn sync_claimed(
        &self,
        mailbox: &MailboxRow,
        cancel: CancellationToken,
    ) -> SyncAttempt {
        let progress = Progress::default();
        let request = SyncRequest {
            mailbox: MailboxRef::Known {
                id: mailbox.id,
                org: mailbox.org_id.clone(),
                email: MailboxAddress::normalized(&mailbox.provider_email),
            },
            fallback_days: self.options.fallback_days,
        };
        if let Some(m) = &self.options.metrics {
            m.run_started();
        }
        let attempt = SyncAttempt::of(self.engine.sync(request, cancel, &progress).await);
        if let Some(m) = &self.options.metrics {
            m.run_finished();
            match &attempt {
                SyncAttempt::Synced(run) => {
                    m.record_run("sync", Some(run), Metrics::outcome_label(run.verdict()))
                }
                SyncAttempt::Busy => m.record_run("sync", None, "busy"),
                SyncAttempt::Interrupted => m.record_run("sync", None, "interrupted"),
                SyncAttempt::QuotaDaySpent { .. } => m.record_run("sync", None, "quota_day_spent"),
                SyncAttempt::Failed(_) => m.record_run("sync", None, "failed"),
            }
        }
        let email = mailbox.provider_email.as_str();
        match &attempt {
            SyncAttempt::Synced(run) => info!(
                mailbox = email,
                run_id = run.run_id,
                messages_inserted = run.tally.messages.inserted,
                deleted = run.tally.messages_deleted,
                labels_changed = run.tally.labels_changed,
                skipped = run.tally.skipped.len(),
                "synced"
            ),
            SyncAttempt::Failed(err) => {
                warn!(mailbox = email, error = %err, "sync failed; backing off")
            }
            SyncAttempt::QuotaDaySpent { resets_in } => info!(
                mailbox = email,
                resets_in_secs = resets_in.as_secs(),
                "the project's quota day is spent; due again after midnight Pacific"
            ),
            SyncAttempt::Busy | SyncAttempt::Interrupted => {}
        }
        if let Err(e) = self
            .engine
            .repo
            .schedule_next(mailbox.id, attempt.next_sync(&self.options))
            .await
        {
            error!(mailbox = email, error = %e, "could not schedule the next sync");
        }
        // Right after a sync, so what the check finds is what the sync missed.
        if let (SyncAttempt::Synced(_), Some(every)) = (&attempt, self.options.verify_every)
            && let Err(e) = self.check_completeness(mailbox, every).await
        {
            warn!(mailbox = email, error = %e, "completeness check failed; tried again next time");
        }
        attempt
    }

    /// Runs the mailbox's completeness check if it is due, and records it.
    async fn check_completeness(
        &self,
        mailbox: &MailboxRow,
        every: Duration,
    ) -> Result<(), EngineError> {
        if !self
            .engine
            .repo
            .claim_verify(MailboxId(mailbox.id), every)
            .await?
        {
            return Ok(());
        }
        let started = Utc::now();
        let report = verify::verify(
            self.engine.repo.as_ref(),
            &self.engine.store,
            Some(&self.engine.gmail),
            &VerifyOptions {
                org: self.engine.org.clone(),
                mailbox: Some(mailbox.provider_email.clone()),
                deep: false,
                full: true,
                expect_head: None,
                sample: None,
            },
        )
        .await?;
        let run = report
            .completeness_check(mailbox.id)
            .unwrap_or_else(|| VerifyRun {
                ok: false,
                missing_here: 0,
                gone_there: 0,
                findings: vec!["the check did not reach this mailbox".into()],
            });
        info!(
            mailbox = %mailbox.provider_email,
            ok = run.ok,
            missing_here = run.missing_here,
            gone_there = run.gone_there,
            "completeness check"
        );
        self.engine
            .repo
            .record_verify(MailboxId(mailbox.id), started, &run)
            .await?;
        Ok(())
    }
}

fn tally(report: &mut WorkerReport, done: Result<SyncAttempt, tokio::task::JoinError>) {
    match done {
        Ok(SyncAttempt::Synced(_)) => report.synced += 1,
        Ok(SyncAttempt::Busy) => report.busy += 1,
        Ok(SyncAttempt::Interrupted) => report.interrupted += 1,
        Ok(SyncAttempt::QuotaDaySpent { .. }) => report.quota_day_spent += 1,
        Ok(SyncAttempt::Failed(_)) => report.failed += 1,
        Err(e) => {
            error!(error = %e, "a sync task panicked");
            report.failed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_quota_day_schedules_the_mailbox_after_midnight_pacific() {
        let options = WorkerOptions::default();
        let resets_in = Duration::from_secs(3 * 3600);
        let attempt = SyncAttempt::QuotaDaySpent { resets_in };
        assert_eq!(
            attempt.next_sync(&options),
            NextSync::Retry {
                after: resets_in + Duration::from_secs(60)
            }
        );
    }
}
