//! Anchoring the ledger outside the database: after each run, the mailbox's
//! chain head (seq and hash) is appended to a place the database's owner
//! cannot rewrite along with it. Later, `verify --expect-head SEQ:HASH`
//! proves the chain still extends that head: a chain rewritten or truncated
//! by someone who can lift the append-only triggers no longer has that hash
//! at that seq.
//!
//! Two targets: a local file (`--anchor-to PATH` or `file:PATH`), appended one
//! JSON line per run and flushed to disk before the run is reported; or an S3
//! bucket (`--anchor-to s3://bucket/prefix`), one object per run at
//! `<prefix>/anchors/<org>/<mailbox>/<seq>-<hash>.json`, written once
//! (put-if-absent, never replaced). Point either at storage the database host
//! cannot rewrite: a bucket with object lock, a WORM volume, a file shipped
//! elsewhere by the system's log pipeline.

use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ledger::ChainHead;
use serde::Serialize;
use sha2::Digest;
use store::{BlobStore, StoreError};

/// Where chain heads are appended.
#[derive(Debug, Clone)]
pub enum AnchorTarget {
    /// A local file, appended to (created if missing).
    File(PathBuf),
    /// An S3 bucket (and prefix): one write-once object per run.
    Bucket(BlobStore),
}

/// What an anchor failure says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    #[error("--anchor-to {0:?}: give a file path, file:PATH or s3://bucket/prefix")]
    BadTarget(String),
    #[error("anchoring the ledger head: {0}")]
    Store(#[from] StoreError),
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
    /// `PATH`, `file:PATH`, `file://PATH` or `s3://bucket/prefix`.
    pub async fn open(spec: &str) -> Result<AnchorTarget, AnchorError> {
        if spec.starts_with("s3://") {
            return Ok(AnchorTarget::Bucket(BlobStore::from_url(spec, "").await?));
        }
        Self::file(spec)
    }

    fn file(spec: &str) -> Result<AnchorTarget, AnchorError> {
        let path = spec
            .strip_prefix("file://")
            .or_else(|| spec.strip_prefix("file:"))
            .unwrap_or(spec);
        if path.is_empty() || path.contains("://") {
            return Err(AnchorError::BadTarget(spec.to_owned()));
        }
        Ok(AnchorTarget::File(PathBuf::from(path)))
    }

    /// Records the head: a line appended and flushed to disk, or an object
    /// written once.
    pub async fn append(&self, record: &AnchorRecord) -> Result<(), AnchorError> {
        let path = match self {
            AnchorTarget::File(path) => path,
            AnchorTarget::Bucket(bucket) => {
                let body = serde_json::to_vec(record).expect("an anchor record serialises");
                let path = format!(
                    "anchors/{}/{}/{}-{}.json",
                    key_segment(&record.org),
                    key_segment(&record.mailbox),
                    record.seq,
                    record.hash
                );
                bucket.put_record(&path, Bytes::from(body)).await?;
                return Ok(());
            }
        };
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

/// An org or address as one object key segment: as it is when it is made of
/// the characters keys allow, else its sha256 (an address may hold others).
fn key_segment(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.starts_with('.')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+=-".contains(&b));
    if plain {
        text.to_owned()
    } else {
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_targets_and_key_segments() {
        for spec in [
            "/var/anchor.jsonl",
            "file:/var/anchor.jsonl",
            "file:///var/anchor.jsonl",
        ] {
            assert!(matches!(
                AnchorTarget::file(spec).unwrap(),
                AnchorTarget::File(p) if p == std::path::Path::new("/var/anchor.jsonl")
            ));
        }
        assert!(AnchorTarget::file("http://x/y").is_err());
        assert!(AnchorTarget::file("").is_err());
        assert_eq!(key_segment("ann@example.com"), "ann@example.com");
        assert_eq!(key_segment("a/b@example.com").len(), 64);
        assert_eq!(key_segment("..").len(), 64);
    }
}
