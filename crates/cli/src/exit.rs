//! The exit codes scripts rely on, and the one mapping from outcomes to them.
//!
//! 0 done; 1 failed; 2 usage; 3 done but some messages skipped; 4 verify found
//! problems; 5 `status --check` found a degraded mailbox; 75 another run holds
//! (or took over) the mailbox, or the project's quota day is spent (try again
//! later); 130 interrupted.

use std::process::ExitCode;

use ingest::engine::{EngineError, RunSummary, RunVerdict};

/// What a command amounted to, ordered from best to worst so that a command
/// over several mailboxes (`sync --all`) exits with its worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Done,
    /// Done, but some messages were skipped (listed in the summary).
    Skipped,
    /// Another run holds this mailbox, or took it over mid-run; or the project's
    /// quota day is spent. Either way: try again later.
    Locked,
    /// `verify` found problems.
    VerifyProblems,
    /// `status --check`: a mailbox is degraded.
    Degraded,
    /// The command line was wrong.
    Usage,
    Failed,
    /// Interrupted by a signal; a re-run resumes.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Skipped => 3,
            Exit::VerifyProblems => 4,
            Exit::Degraded => 5,
            Exit::Locked => 75,
            Exit::Interrupted => 130,
        }
    }

    /// Engine errors with an exit code of their own; `None`: an ordinary failure.
    pub fn of_error(err: &EngineError) -> Option<Exit> {
        match err {
            EngineError::Locked { .. } | EngineError::LeaseLost { .. } => Some(Exit::Locked),
            EngineError::InvalidWindow(_) => Some(Exit::Usage),
            EngineError::Gmail(gmail::GmailError::QuotaDayExhausted { .. }) => Some(Exit::Locked),
            _ => None,
        }
    }
}

/// A command line naming what the command cannot use (a mailbox outside
/// `--org`), as an error a command returns: `main` prints it as one line and
/// exits 2, as for clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A value clap accepted but the command cannot use (`sync --fallback-days 0`):
/// one line on stderr, exit 2, as clap's own usage errors.
pub fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    Exit::Usage.into()
}

impl From<&RunSummary> for Exit {
    fn from(run: &RunSummary) -> Exit {
        match run.verdict() {
            RunVerdict::Completed => Exit::Done,
            RunVerdict::CompletedWithSkips => Exit::Skipped,
            RunVerdict::Interrupted => Exit::Interrupted,
            // Try again later (after midnight Pacific), like a held mailbox.
            RunVerdict::QuotaDaySpent => Exit::Locked,
            RunVerdict::Failed => Exit::Failed,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
