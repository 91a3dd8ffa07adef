//! The engines' error type: what stopped a run, in words an operator can act on.

use crate::repo::RepoError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Another live run holds the mailbox (`run_id` is `None` while that run
    /// is still starting and has no row yet).
    #[error(
        "mailbox {mailbox} is held by {} (heartbeat {heartbeat_age_secs}s ago)",
        run_id.map_or_else(|| "a run that is starting".to_owned(), |id| format!("run {id}"))
    )]
    Locked {
        mailbox: String,
        run_id: Option<i64>,
        heartbeat_age_secs: i64,
    },
    /// The run lost its mailbox to another run while it worked (its lock's
    /// connection dropped and the lease was taken over). Nothing after that
    /// point was committed; the run that took over carries on.
    #[error(
        "run {run_id} lost mailbox {mailbox} to another run; it stopped without committing more (the next run resumes)"
    )]
    LeaseLost { mailbox: String, run_id: i64 },
    /// Gmail's historyId is behind the stored cursor: the mailbox was
    /// restored or re-created at Google, or the address is another
    /// account's now. History from the cursor would never show a change
    /// (handled by the sync like expired history; never reaches a caller).
    #[error("Gmail's historyId {gmail} is behind the stored cursor {cursor}")]
    HistoryBehindCursor { cursor: u64, gmail: u64 },
    #[error("mailbox {0} is not registered (add it with `mailingest mailbox add`)")]
    UnknownMailbox(String),
    /// A mailbox of another organisation was handed to this engine.
    #[error("mailbox {mailbox} belongs to org {owner}, not {engine_org}")]
    ForeignMailbox {
        mailbox: String,
        owner: String,
        engine_org: String,
    },
    /// A blob this run found already stored was removed by `mailingest gc`
    /// before the run recorded it. Nothing of the batch was written; the
    /// next run fetches and stores the message again.
    #[error(
        "blob {sha256} was removed from the store (by gc) while this run was about to record it; nothing of its batch was written, and the next run stores it again"
    )]
    BlobCollected { sha256: String },
    /// An import's file could not be read (`mailingest import`).
    #[error("{}: {reason}", path.display())]
    Import {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("invalid window: {0}")]
    InvalidWindow(String),
    #[error(transparent)]
    Gmail(#[from] gmail::GmailError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::domain::InvalidWindow> for EngineError {
    fn from(invalid: crate::domain::InvalidWindow) -> Self {
        EngineError::InvalidWindow(invalid.0)
    }
}
