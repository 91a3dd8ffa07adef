//! The run lifecycle as the database holds it: taking a mailbox for a run
//! (the lease), proving it alive, ending it, and opening the fenced write
//! transactions ([`RepoTx`](super::RepoTx)) the run commits its batches in.

use async_trait::async_trait;

use super::{Fence, HeldRun, RepoError, RepoTx, RunEnd, RunStart};

/// The run lease and its fenced transactions.
#[async_trait]
pub trait Runs: Send + Sync {
    /// Takes the mailbox for a new run: marks runs whose process died
    /// interrupted, records the run and its `sync.started` event. Fails with
    /// [`RepoError::Locked`] while another live run holds the mailbox.
    async fn start_run(&self, start: &RunStart) -> Result<HeldRun, RepoError>;
    /// Proves the run alive for `status` and for takeover; false once it has lost the mailbox.
    async fn heartbeat(&self, fence: Fence) -> Result<bool, RepoError>;
    /// Ends the run (status, counts, terminal event, cursor) in one fenced
    /// transaction and releases the mailbox. May be called again after a
    /// failure: a run already ended is fenced out, never ended twice.
    async fn finish_run(&self, run: &mut HeldRun, end: &RunEnd) -> Result<(), RepoError>;
    /// Opens a write transaction that proves, inside itself, that the run
    /// still holds its mailbox ([`RepoError::LeaseLost`] otherwise).
    async fn begin(&self, fence: Fence) -> Result<Box<dyn RepoTx>, RepoError>;
}
