//! The exit codes scripts rely on (DESIGN.md, "CLI contract").

/// The job failed.
pub const FAILED: u8 = 1;
/// The command line was wrong.
pub const USAGE: u8 = 2;
/// The job finished but some messages were skipped (listed in the summary).
pub const SKIPPED: u8 = 3;
/// `verify` found problems.
pub const VERIFY_PROBLEMS: u8 = 4;
/// Another run holds this mailbox.
pub const LOCKED: u8 = 75;
/// Interrupted by a signal; a re-run resumes.
pub const INTERRUPTED: u8 = 130;
