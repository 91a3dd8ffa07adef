//! [`RunLease`], the one owner of a run's lifecycle: start (the mailbox's
//! lease and `sync.started`), the background heartbeat, the [`Fence`] every
//! write presents, and finish (status, counts, terminal event, cursor), ridden
//! out through a database outage. Backfill, sync and gc's purge runs all go
//! through it, so the lease cannot drift apart between kinds of run.
//!
//! It needs only the repository: what a run does between start and finish is
//! its caller's. The repository's lease answers (`Locked`, `LeaseLost`) become
//! [`EngineError`]s naming the mailbox, here and nowhere else.
//!
//! A run fenced out mid-body (another run took its mailbox over) is not
//! finished: the run that took over already ended it, and its finish would
//! be fenced out too. Its caller ends it with [`RunLease::lost`].

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::warn;

use super::EngineError;
use super::outage::Outage;
use crate::repo::{Fence, HeldRun, RepoError, Repository, RunEnd, RunStart};

/// How often a live run proves it is alive: well inside any lease, so a few
/// missed beats (a slow statement, a short outage) never look like a hung run.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// A live run whose heartbeat is older than this is taken over, unless its
/// starter asks otherwise (`EngineOptions::lease`).
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// How long a database outage is ridden out before giving up, unless its
/// starter asks otherwise (`EngineOptions::db_outage`).
pub(crate) const DEFAULT_DB_OUTAGE: Duration = Duration::from_secs(60);

/// A run this process holds, from its start until it is finished or found lost.
pub(crate) struct RunLease {
    repo: Arc<dyn Repository>,
    held: HeldRun,
    mailbox: String,
    db_outage: Duration,
    heartbeat: Heartbeat,
}

impl RunLease {
    /// Starts a run of `mailbox` (its address, for errors) and its heartbeat.
    /// `start.stale_after` is the lease it takes over a hung run after and
    /// grants its own; `db_outage` bounds the outage its finish rides out.
    pub(crate) async fn start(
        repo: Arc<dyn Repository>,
        start: &RunStart,
        mailbox: &str,
        db_outage: Duration,
    ) -> Result<RunLease, EngineError> {
        let held = repo
            .start_run(start)
            .await
            .map_err(|e| lease_error(e, mailbox))?;
        let heartbeat = Heartbeat::start(repo.clone(), held.fence);
        Ok(RunLease {
            repo,
            held,
            mailbox: mailbox.to_owned(),
            db_outage,
            heartbeat,
        })
    }

    /// What every write of this run presents.
    pub(crate) fn fence(&self) -> Fence {
        self.held.fence
    }

    pub(crate) fn run_id(&self) -> i64 {
        self.held.fence.run_id
    }

    /// Records how the run ended (one transaction, fenced like every write),
    /// riding out a database outage, then releases the mailbox.
    pub(crate) async fn finish(self, end: &RunEnd) -> Result<(), EngineError> {
        let RunLease {
            repo,
            mut held,
            mailbox,
            db_outage,
            heartbeat,
        } = self;
        // Nothing left to prove alive while the end is written.
        drop(heartbeat);
        let mut outage = Outage::new(db_outage);
        loop {
            match repo.finish_run(&mut held, end).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let e = lease_error(e, &mailbox);
                    if !outage.wait_to_retry("finish run", &e).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// The run was fenced out mid-body: releases the mailbox without
    /// finishing (the run that took over ended this one) and names the loss.
    pub(crate) fn lost(self) -> EngineError {
        lease_error(
            RepoError::LeaseLost {
                run_id: self.run_id(),
            },
            &self.mailbox,
        )
    }
}

/// Whether `err` is the fence refusing a write: the run lost its mailbox.
pub(crate) fn is_lease_lost(err: &RepoError) -> bool {
    matches!(err, RepoError::LeaseLost { .. })
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

/// Proves the run alive every few seconds until dropped. A background task,
/// not beats between units of work, so a slow unit (a batch riding out an
/// outage, a purge chunk waiting on the store) never lets the lease go stale.
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
