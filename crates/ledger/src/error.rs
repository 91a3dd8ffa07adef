//! The ledger's one error type.

/// Everything the ledger can fail with. Database errors keep their sqlx cause; everything
/// else is detected before a statement is sent, so it never aborts the caller's transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error("ledger database error: {0}")]
    Database(#[from] sqlx::Error),

    /// `append`/`append_terminal` need a transaction: the chain lock is transaction-scoped.
    #[error("ledger appends must run inside a transaction (begin one with sqlx and pass &mut *tx)")]
    NotInTransaction,

    #[error("event {index} is invalid: {reason}")]
    InvalidEvent { index: usize, reason: String },

    /// Terminal events go through `append_terminal`, which makes a repeat a no-op.
    #[error("event {index} is terminal ({event_type}); use append_terminal")]
    TerminalInBatch {
        index: usize,
        event_type: &'static str,
    },

    #[error("{event_type} is not a terminal event type")]
    NotTerminal { event_type: &'static str },

    #[error("sync run {run_id} does not exist")]
    RunNotFound { run_id: i64 },

    #[error("sync run {run_id} belongs to mailbox {run_mailbox_id}, not mailbox {mailbox_id}")]
    RunMailboxMismatch {
        run_id: i64,
        run_mailbox_id: i64,
        mailbox_id: i64,
    },

    /// Another writer took the seq this append computed. Only possible when the caller's
    /// transaction is not READ COMMITTED (its snapshot predates the chain lock).
    #[error(
        "ledger chain of mailbox {mailbox_id} moved under this transaction; append requires READ COMMITTED"
    )]
    ChainConflict { mailbox_id: i64 },

    /// A stored row that cannot be read back as an event (unknown type, bad payload).
    #[error("ledger row seq {seq} is malformed: {reason}")]
    MalformedRow { seq: i64, reason: String },

    #[error("unknown ledger event type {0:?}")]
    UnknownEventType(String),
}
