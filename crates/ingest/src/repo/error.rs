//! The repository's error type.

/// A failure of the repository layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// The database cannot be reached (`target` names host, port and
    /// database, never the URL: it may carry a password).
    #[error("cannot connect to {target}: {cause}")]
    Connect { target: String, cause: String },
    /// The schema could not be brought up to date.
    #[error("applying migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database refused or failed a statement.
    #[error("database error during {operation}: {source}")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A row could not be encoded for the database (a bug, not bad input).
    #[error("could not encode {operation} batch: {source}")]
    Encode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The database answered with a row the statement cannot have produced.
    #[error("{operation}: database returned an unexpected row for key {key}")]
    UnexpectedRow {
        operation: &'static str,
        key: String,
    },
    /// A value does not fit the column it goes to (a Gmail historyId above 2^63).
    #[error("{what} {value} does not fit a signed 64-bit column")]
    OutOfRange { what: &'static str, value: u64 },
    /// Another live run holds the mailbox (`run_id` is `None` while that run
    /// is still starting and has no row yet).
    #[error("the mailbox is held by another run")]
    Locked {
        run_id: Option<i64>,
        heartbeat_age_secs: i64,
    },
    /// The run no longer owns its mailbox (another run took it over): the
    /// transaction that found out committed nothing.
    #[error("run {run_id} no longer holds its mailbox")]
    LeaseLost { run_id: i64 },
    /// The embedded database's file was removed or replaced while this
    /// process had it open: what it would write now goes to a file nobody
    /// will open again, so nothing more is written.
    #[error(
        "the SQLite database file {path} was removed or replaced while this process had it open; nothing more is written (run again to use the file now at that path)"
    )]
    DatabaseFileReplaced { path: String },
    /// Another live process delivers for this change-feed consumer.
    #[error("consumer {name:?} is held by another live process")]
    ConsumerBusy { name: String },
    /// Another process took this change-feed consumer: the acknowledgement
    /// that found out moved no position.
    #[error("consumer {name:?} was taken over by another process")]
    ConsumerFenced { name: String },
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    /// A stored value the schema does not allow (a status string, say).
    #[error("{0}")]
    Corrupt(String),
}

impl RepoError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> RepoError {
        move |source| RepoError::Database { operation, source }
    }

    /// Whether the database was unreachable or dropped the connection
    /// (a restart, a failover, a network cut) rather than refusing the work:
    /// such a failure may go away by itself, and the work may be replayed.
    pub fn is_connection(&self) -> bool {
        let RepoError::Database { source, .. } = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::Protocol(_) => true,
            // SQLSTATE class 08 (connection exception) and 57P01-57P03
            // (admin shutdown, crash shutdown, cannot connect now).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        }
    }
}

/// A Gmail u64 (historyId) as the signed 64-bit value a column holds.
pub(crate) fn as_i64(what: &'static str, value: u64) -> Result<i64, RepoError> {
    i64::try_from(value).map_err(|_| RepoError::OutOfRange { what, value })
}
