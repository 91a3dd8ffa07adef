//! Why a message could not be ingested, and the failure a run records for it
//! in its batch: what the engines classify and the quarantine stores.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::UnknownValue;

/// Why a message could not be ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// Gmail or our code refused this very message (400, a parser failure, a
    /// field out of range). Retrying is unlikely to help soon.
    Rejected,
    /// Retries on this one id were exhausted (5xx, 429, connection errors).
    Unavailable,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Rejected => "rejected",
            FailureKind::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureKind {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rejected" => Ok(FailureKind::Rejected),
            "unavailable" => Ok(FailureKind::Unavailable),
            other => Err(UnknownValue {
                what: "quarantine failure",
                value: other.to_owned(),
            }),
        }
    }
}

/// One failed attempt to ingest a message, recorded in the batch's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFailure {
    pub provider_message_id: String,
    pub provider_thread_id: Option<String>,
    pub kind: FailureKind,
    pub reason: String,
    /// The archived raw bytes, when they were fetched.
    pub raw_sha256: Option<String>,
}
