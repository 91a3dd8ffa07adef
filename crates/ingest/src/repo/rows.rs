//! What the repository reads back for the engines and gc: a listed thread's
//! stored coverage, and a blob gc may purge. The rows a batch writes are
//! `domain` values (`ThreadUpsert`, `MessageUpsert`, …).

use serde::Serialize;

use crate::domain::Coverage;

/// What the database knows of a listed thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredThread {
    pub history_id: Option<i64>,
    pub coverage: Coverage,
}

/// A blob gc may purge: only messages Gmail deleted long ago held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeCandidate {
    pub sha256: String,
    pub size: i64,
    /// The mailbox's messages whose raw bytes or part it is.
    pub messages: Vec<String>,
}
