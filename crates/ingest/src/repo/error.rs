//! The repository's error type.

/// A failure of the repository layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
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
}

impl RepoError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> RepoError {
        move |source| RepoError::Database { operation, source }
    }
}
