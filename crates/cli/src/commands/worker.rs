//! `mailingest worker`: the long-running scheduler.
//!
//! Postgres is the only coordinator: due mailboxes are claimed with
//! `FOR UPDATE SKIP LOCKED`, so any number of workers on any number of machines
//! share the work without running one mailbox twice (the run lease is the
//! second guard). SIGTERM stops claiming, lets in-flight runs commit what they
//! have and mark themselves interrupted, and exits 0.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ingest::engine::{Engine, EngineError, Progress, SyncRequest};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::args::GlobalArgs;
use crate::{context, signals};

#[derive(Debug, Args)]
pub struct Worker {
    /// Time between syncs of one mailbox (e.g. 30s, 5m, 1h); default: each mailbox's own.
    #[arg(long, value_parser = parse_duration)]
    interval: Option<Duration>,
    /// Mailboxes synced at once by this worker.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// How often to look for due mailboxes.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    poll: Duration,
    /// Days backed up when a mailbox has no cursor or its history expired.
    #[arg(long, default_value_t = 7)]
    fallback_days: u32,
    /// Stop after this many claim rounds that found work (for tests and one-shot use).
    #[arg(long, hide = true)]
    max_rounds: Option<u64>,
}

/// What one sync attempt amounted to; drives the schedule.
#[derive(Debug)]
enum SyncOutcome {
    Synced,
    /// Another run holds the mailbox: try again soon, not a failure.
    Busy,
    /// Stopped by SIGTERM; the next claim resumes it.
    Interrupted,
    Failed(String),
}

/// Accepts `90`, `90s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 30s, 5m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("'{s}': unit must be s, m or h")),
    };
    if secs == 0 {
        return Err("a duration must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

/// How long a claimed mailbox is hidden from other workers while it runs.
const CLAIM_HOLD: Duration = Duration::from_secs(15 * 60);
/// When a mailbox was busy, try again after this.
const BUSY_RETRY: Duration = Duration::from_secs(30);

impl Worker {
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
        let concurrency = self.concurrency.max(1);
        let gmail = context::gmail_client(global, None).await?;
        let engine = context::engine(global, gmail, (concurrency as u32) * 4 + 4).await?;
        let cancel = signals::cancel_on_signal();
        let slots = Arc::new(Semaphore::new(concurrency));
        let mut running: JoinSet<()> = JoinSet::new();
        let mut rounds = 0u64;
        info!(concurrency, "worker started");
        loop {
            if cancel.is_cancelled() {
                break;
            }
            while running.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free > 0 {
                let claimed =
                    match ingest::mailboxes::claim_due(&engine.pool, free as i64, CLAIM_HOLD).await
                    {
                        Ok(c) => c,
                        Err(e) => {
                            error!(error = %e, "claiming due mailboxes failed; retrying");
                            Vec::new()
                        }
                    };
                if !claimed.is_empty() {
                    rounds += 1;
                }
                for mailbox in claimed {
                    let permit = slots.clone().acquire_owned().await?;
                    let engine = engine.clone();
                    let cancel = cancel.clone();
                    let interval = self.interval;
                    let fallback_days = self.fallback_days;
                    running.spawn(async move {
                        let outcome =
                            sync_mailbox(&engine, &mailbox.provider_email, fallback_days, cancel)
                                .await;
                        schedule(
                            &engine,
                            mailbox.id,
                            &mailbox.provider_email,
                            outcome,
                            interval,
                        )
                        .await;
                        drop(permit);
                    });
                }
            }
            if self.max_rounds.is_some_and(|max| rounds >= max) {
                break;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.poll) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        info!(
            in_flight = running.len(),
            "worker stopping: waiting for in-flight runs"
        );
        while running.join_next().await.is_some() {}
        info!("worker stopped");
        Ok(ExitCode::SUCCESS)
    }
}

async fn sync_mailbox(
    engine: &Engine,
    mailbox: &str,
    fallback_days: u32,
    cancel: CancellationToken,
) -> SyncOutcome {
    let progress = Progress::default();
    let request = SyncRequest {
        mailbox: mailbox.to_owned(),
        fallback_days,
    };
    match engine.sync(request, cancel, &progress).await {
        Ok(run) if run.status == "completed" => {
            info!(
                mailbox,
                run_id = run.run_id,
                messages_inserted = run.tally.messages.inserted,
                deleted = run.tally.messages_deleted,
                labels_changed = run.tally.labels_changed,
                skipped = run.tally.skipped.len(),
                "synced"
            );
            SyncOutcome::Synced
        }
        Ok(run) if run.status == "interrupted" => SyncOutcome::Interrupted,
        Ok(run) => SyncOutcome::Failed(run.error.unwrap_or_else(|| "run failed".into())),
        Err(EngineError::Locked { .. }) => SyncOutcome::Busy,
        Err(e) => SyncOutcome::Failed(e.to_string()),
    }
}

async fn schedule(
    engine: &Engine,
    mailbox_id: i64,
    mailbox: &str,
    outcome: SyncOutcome,
    interval: Option<Duration>,
) {
    let result = match &outcome {
        SyncOutcome::Synced => {
            ingest::mailboxes::finish_scheduled(&engine.pool, mailbox_id, None, interval).await
        }
        SyncOutcome::Failed(err) => {
            warn!(mailbox, error = %err, "sync failed; backing off");
            ingest::mailboxes::finish_scheduled(&engine.pool, mailbox_id, Some(err), interval).await
        }
        SyncOutcome::Busy => {
            ingest::mailboxes::release_claim(&engine.pool, mailbox_id, BUSY_RETRY).await
        }
        // Due again at once: the next worker (or this one, restarted) resumes it.
        SyncOutcome::Interrupted => {
            ingest::mailboxes::release_claim(&engine.pool, mailbox_id, Duration::ZERO).await
        }
    };
    if let Err(e) = result {
        error!(mailbox, error = %e, "could not schedule the next sync");
    }
}
