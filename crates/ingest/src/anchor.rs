//! Anchoring the ledger outside the database: after each run, the mailbox's
//! chain head (seq and hash) is appended to a place the database's owner
//! cannot rewrite along with it. Later, `verify --expect-head SEQ:HASH`
//! proves the chain still extends that head: a chain rewritten or truncated
//! by someone who can lift the append-only triggers no longer has that hash
//! at that seq.
//!
//! The one target today is a local file (`--anchor-to PATH` or `file:PATH`),
//! appended one JSON line per run and flushed to disk before the run is
//! reported; point it at storage the database host cannot write (a mounted
//! WORM volume, a file shipped elsewhere by the system's log pipeline).

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use ledger::ChainHead;
use serde::Serialize;

/// Where chain heads are appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorTarget {
    /// A local file, appended to (created if missing).
    File(PathBuf),
}

/// What an anchor failure says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    #[error("--anchor-to {0:?}: give a file path or file:PATH")]
    BadTarget(String),
    #[error("appending the ledger head to {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One anchored head: which chain, where it stood, after which run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorRecord {
    pub org: String,
    pub mailbox: String,
    pub run_id: i64,
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
}

impl AnchorRecord {
    pub fn new(org: &str, mailbox: &str, run_id: i64, head: &ChainHead) -> AnchorRecord {
        AnchorRecord {
            org: org.to_owned(),
            mailbox: mailbox.to_owned(),
            run_id,
            seq: head.seq,
            hash: head.hash.clone(),
            at: Utc::now(),
        }
    }
}

impl AnchorTarget {
    /// `PATH`, `file:PATH` or `file://PATH`.
    pub fn parse(spec: &str) -> Result<AnchorTarget, AnchorError> {
        let path = spec
            .strip_prefix("file://")
            .or_else(|| spec.strip_prefix("file:"))
            .unwrap_or(spec);
        if path.is_empty() || path.contains("://") {
            return Err(AnchorError::BadTarget(spec.to_owned()));
        }
        Ok(AnchorTarget::File(PathBuf::from(path)))
    }

    /// Appends the record and flushes it to disk.
    pub async fn append(&self, record: &AnchorRecord) -> Result<(), AnchorError> {
        let AnchorTarget::File(path) = self;
        let mut line = serde_json::to_vec(record).expect("an anchor record serialises");
        line.push(b'\n');
        let path = path.clone();
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            // One write of one line: O_APPEND keeps concurrent runs' lines whole.
            file.write_all(&line)?;
            file.sync_data()
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(|source| AnchorError::Write {
            path: shown,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_files() {
        for spec in [
            "/var/anchor.jsonl",
            "file:/var/anchor.jsonl",
            "file:///var/anchor.jsonl",
        ] {
            assert_eq!(
                AnchorTarget::parse(spec).unwrap(),
                AnchorTarget::File("/var/anchor.jsonl".into())
            );
        }
        assert!(AnchorTarget::parse("s3://bucket/x").is_err());
        assert!(AnchorTarget::parse("").is_err());
    }
}
