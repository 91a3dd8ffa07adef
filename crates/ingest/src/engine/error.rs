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
    #[error("mailbox {0} is not registered (add it with `mailingest mailbox add`)")]
    UnknownMailbox(String),
    #[error("invalid window: {0}")]
    InvalidWindow(String),
    #[error(transparent)]
    Gmail(#[from] gmail::GmailError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("database error during {operation}: {source}")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> EngineError {
        move |source| EngineError::Database { operation, source }
    }
}
