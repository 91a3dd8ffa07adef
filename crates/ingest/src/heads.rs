//! Ledger heads left in the store, so gc can prove its database is not behind
//! the store before it removes unrecorded objects (issue 26, finding 5).
//!
//! Why: gc removes objects no row records. Restore the database from a backup
//! and every object written after the backup is unrecorded, and for mail Gmail
//! has deleted since, the store holds the only copy. A vote of recorded against
//! unrecorded objects cannot tell: a restored database records most of them.
//!
//! How: every run, as it ends, writes the mailbox's ledger head (seq and hash)
//! as a small record under the org's prefix (`<org>/.ledger-heads/`, see
//! `store::BlobStore::put_ledger_head`), after its rows are committed. The
//! ledger is append-only and hash-chained, so a database that is current has,
//! for every record, an event at that seq with that hash; a restored (or
//! stale, or another deployment's) database lacks one: fewer events, or a
//! chain that went on from the backup with other hashes. gc then removes
//! nothing ([`DatabaseBehind`]). Records the database holds are pruned down to
//! the newest per mailbox, so the listing stays small.
//!
//! What it does not cover: a run killed before it ends leaves no record for
//! the batches it committed; if the database is restored to before them and
//! no later run ended in between, gc cannot see they existed. The two-phase
//! removal (the trash, `gc --restore-all`) is the net for that.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use ledger::ChainHead;
use serde::{Deserialize, Serialize};
use store::BlobStore;
use tracing::{info, warn};

use crate::repo::{RepoError, Repository};

/// One ledger head as a run left it in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRecord {
    pub org: String,
    pub mailbox: String,
    pub run_id: i64,
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
}

/// Writes the mailbox's head, as the run that just ended left it, to the store.
pub async fn leave(
    store: &BlobStore,
    org: &str,
    mailbox: &str,
    run_id: i64,
    head: &ChainHead,
) -> Result<(), store::StoreError> {
    let record = HeadRecord {
        org: org.to_owned(),
        mailbox: mailbox.to_owned(),
        run_id,
        seq: head.seq,
        hash: head.hash.clone(),
        at: Utc::now(),
    };
    let body = serde_json::to_vec(&record).expect("a head record serialises");
    store.put_ledger_head(Bytes::from(body)).await.map(drop)
}

/// A head the store holds that the database's chain lacks: the database is
/// behind the store (restored from a backup, stale, or not this store's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseBehind {
    pub mailbox: String,
    pub seq: i64,
    pub hash: String,
    /// What the database has instead.
    pub found: Lacking,
    /// How many of the store's heads the database lacks, this one included.
    pub lacking: usize,
}

/// What the database has where the store's head is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lacking {
    /// No such mailbox in the org.
    NoMailbox,
    /// The chain is shorter.
    NoEvent,
    /// The event at that seq has another hash (the chain went on from an older point).
    OtherHash(String),
}

impl std::fmt::Display for DatabaseBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.found {
            Lacking::NoMailbox => "the database has no such mailbox".to_owned(),
            Lacking::NoEvent => format!("the database's chain has no event {}", self.seq),
            Lacking::OtherHash(h) => {
                format!("the database's event {} has hash {h}", self.seq)
            }
        };
        write!(
            f,
            "the store holds ledger head {}:{} of {} but {what} ({} such heads): the database is \
             behind the store (restored from a backup?), so objects written since may be the only \
             copy; nothing was removed (see README, \"Restoring a database safely\"; \
             --accept-restored-database removes them anyway)",
            self.seq, self.hash, self.mailbox, self.lacking
        )
    }
}

/// What checking the store's heads found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeadsReport {
    /// Heads read from the store.
    pub heads: u64,
    /// Older heads the database holds, removed (the newest per mailbox stays).
    pub pruned: u64,
    /// Heads the database lacks (and, with `accept`, removed).
    pub lacking: Vec<HeadRecord>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeadsError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("ledger head record {sha256} in the store is not readable: {reason}")]
    Unreadable { sha256: String, reason: String },
}

/// Reads every head of `org` in `store` and looks each up in the database's
/// chain. `prune`: delete heads the database holds except each mailbox's newest;
/// and, with `accept` as well, the heads it lacks (the operator accepted the
/// database as it is).
pub async fn check(
    repo: &dyn Repository,
    store: &BlobStore,
    org: &str,
    prune: bool,
    accept: bool,
) -> Result<(HeadsReport, Option<DatabaseBehind>), HeadsError> {
    let ids: HashMap<String, i64> = repo
        .list_mailboxes(org)
        .await?
        .into_iter()
        .map(|m| (m.provider_email, m.id))
        .collect();
    let mut report = HeadsReport::default();
    let listed: Vec<store::StoredObject> = store.ledger_heads().try_collect().await?;
    // Per mailbox: the heads the database holds, (seq, sha) newest last.
    let mut held: HashMap<String, Vec<(i64, store::Sha256)>> = HashMap::new();
    let mut first_lacking: Option<DatabaseBehind> = None;
    for object in listed {
        let Some(bytes) = store.get_ledger_head(&object.sha256).await? else {
            continue; // pruned meanwhile by another gc
        };
        let record: HeadRecord =
            serde_json::from_slice(&bytes).map_err(|e| HeadsError::Unreadable {
                sha256: object.sha256.to_string(),
                reason: e.to_string(),
            })?;
        if record.org != org {
            continue;
        }
        report.heads += 1;
        let found = match ids.get(&record.mailbox) {
            None => Some(Lacking::NoMailbox),
            Some(&id) => match repo.ledger_hash_at(id, record.seq).await? {
                Some(h) if h == record.hash => None,
                Some(h) => Some(Lacking::OtherHash(h)),
                None => Some(Lacking::NoEvent),
            },
        };
        match found {
            None => held
                .entry(record.mailbox.clone())
                .or_default()
                .push((record.seq, object.sha256)),
            Some(found) => {
                if accept {
                    warn!(mailbox = %record.mailbox, seq = record.seq, hash = %record.hash,
                        "gc --accept-restored-database: the database lacks this ledger head; forgetting it");
                    store.remove_ledger_head(&object.sha256).await?;
                }
                first_lacking.get_or_insert(DatabaseBehind {
                    mailbox: record.mailbox.clone(),
                    seq: record.seq,
                    hash: record.hash.clone(),
                    found,
                    lacking: 0,
                });
                report.lacking.push(record);
            }
        }
    }
    if let Some(behind) = &mut first_lacking {
        behind.lacking = report.lacking.len();
    }
    if prune {
        for (mailbox, mut heads) in held {
            heads.sort();
            heads.pop(); // the newest stays
            for (seq, sha) in heads {
                store.remove_ledger_head(&sha).await?;
                report.pruned += 1;
                info!(%mailbox, seq, "gc: pruned an older ledger head the database holds");
            }
        }
    }
    Ok((report, if accept { None } else { first_lacking }))
}
