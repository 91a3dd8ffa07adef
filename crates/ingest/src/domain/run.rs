//! The run vocabulary: what kind a run is and where it is in its life, as
//! the engines, the worker, the CLI and both backends name them. They become
//! strings (`sync_runs.kind`, `sync_runs.status`) only inside a backend's SQL.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::UnknownValue;

/// What kind of run this is (`sync_runs.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Backfill,
    Sync,
    /// `mailingest gc --purge-deleted-older-than`: removes the objects of
    /// mail Gmail deleted long ago, recording each in the mailbox's chain.
    Gc,
    /// `mailingest import`: seeds the mailbox from a Google Takeout mbox,
    /// holding its lease like a backfill.
    Import,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Backfill => "backfill",
            RunKind::Sync => "sync",
            RunKind::Gc => "gc",
            RunKind::Import => "import",
        }
    }
}

/// Where a run is in its life (`sync_runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// The ledger event that ends a run with this status (`None` for `Running`).
    pub fn terminal_event(self) -> Option<ledger::EventType> {
        match self {
            RunStatus::Running => None,
            RunStatus::Completed => Some(ledger::EventType::SyncCompleted),
            RunStatus::Failed => Some(ledger::EventType::SyncFailed),
            RunStatus::Interrupted => Some(ledger::EventType::SyncInterrupted),
        }
    }
}

impl FromStr for RunStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| UnknownValue {
            what: "run status",
            value: s.to_owned(),
        })
    }
}

impl FromStr for RunKind {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [RunKind::Backfill, RunKind::Sync, RunKind::Import]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownValue {
                what: "run kind",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
