//! [`RunVerdict`]: the one classification of a finished run that the CLI's
//! exit codes and the worker's schedule both follow, so the two cannot
//! disagree on what a run's end means.

use super::{RunStatus, RunSummary};

/// The verdict on a finished run for whoever started it: the one
/// classification the CLI's exit codes and the worker's schedule follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunVerdict {
    /// Everything in scope is stored.
    Completed,
    /// Completed, but some messages were skipped (listed in the summary).
    CompletedWithSkips,
    /// Failed; what was committed stays, and the next run resumes.
    Failed,
    /// Stopped by a signal; the next run resumes.
    Interrupted,
    /// Stopped, keeping every committed batch, because the project's quota day is spent; the
    /// next run after midnight Pacific time resumes.
    QuotaDaySpent,
}

impl RunSummary {
    /// The verdict on this run (see [`RunVerdict`]).
    pub fn verdict(&self) -> RunVerdict {
        match self.status {
            RunStatus::Completed if self.tally.skipped.is_empty() => RunVerdict::Completed,
            RunStatus::Completed => RunVerdict::CompletedWithSkips,
            RunStatus::Interrupted if self.quota_day_resets_in_secs.is_some() => {
                RunVerdict::QuotaDaySpent
            }
            RunStatus::Interrupted => RunVerdict::Interrupted,
            RunStatus::Failed | RunStatus::Running => RunVerdict::Failed,
        }
    }
}
