//! Repairing the archive from Gmail: every blob a row references that is
//! missing from the store, or whose bytes no longer hash to its name, is
//! fetched again and put back (`mailingest repair`).
//!
//! The store is content-addressed, so a repaired object is provably the one
//! the rows name: a raw message is accepted only if Gmail's bytes hash to the
//! recorded sha256, and a part only if the message it is re-derived from
//! yields a part with that hash. Anything else (the message is gone from
//! Gmail, or Gmail now serves other bytes) is reported as unrecoverable, by
//! name, and nothing is written. The fs store replaces a damaged object
//! atomically on put; S3 objects cannot be torn, only missing.
//!
//! The store's trash is looked in first: an object gc moved there (wrongly:
//! a clock, a restored database) comes back without a Gmail call, and is
//! accepted only if it verifies, like anything else put back.

use futures::{StreamExt, TryStreamExt, stream};
use gmail::{GmailClient, GmailError};
use serde::Serialize;
use store::{BlobStore, Sha256, Verification};
use tracing::{info, warn};

use crate::engine::EngineError;
use crate::mime;
use crate::repo::AuditReads;

/// Blobs checked at once.
const CHECKS_IN_FLIGHT: usize = 16;

/// What `repair` did for one mailbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    pub mailbox: String,
    /// Blobs the mailbox's rows reference.
    pub checked: u64,
    /// Blobs that were missing or damaged and are whole again.
    pub repaired: Vec<String>,
    /// Of those, the ones brought back from the store's trash (no Gmail call).
    pub from_trash: Vec<String>,
    /// Blobs that could not be restored, with why.
    pub unrecoverable: Vec<Unrecoverable>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unrecoverable {
    pub sha256: String,
    pub reason: String,
}

impl RepairReport {
    pub fn is_whole(&self) -> bool {
        self.unrecoverable.is_empty()
    }
}

/// Repairs every mailbox of the org (or its one with this address). The
/// store is the org's (its prefix) and `gmail` holds the org's credentials,
/// so another org's mailboxes are never looked at: their blobs would look
/// missing here, and fetching them would copy their mail into this org.
pub async fn repair(
    repo: &dyn AuditReads,
    store: &BlobStore,
    gmail: &GmailClient,
    org: &str,
    email: Option<&str>,
) -> Result<Vec<RepairReport>, EngineError> {
    let mut reports = Vec::new();
    for (mailbox_id, address) in repo.mailboxes_to_verify(org, email).await? {
        reports.push(repair_mailbox(repo, store, gmail, mailbox_id, &address).await?);
    }
    Ok(reports)
}

async fn repair_mailbox(
    repo: &dyn AuditReads,
    store: &BlobStore,
    gmail: &GmailClient,
    mailbox_id: i64,
    address: &str,
) -> Result<RepairReport, EngineError> {
    let shas = repo.referenced_blobs(mailbox_id).await?;
    let mut report = RepairReport {
        mailbox: address.to_owned(),
        checked: shas.len() as u64,
        ..RepairReport::default()
    };
    let damaged: Vec<(Sha256, Verification)> = stream::iter(shas)
        .map(|hex| async move {
            let sha: Sha256 = hex.parse().map_err(|_| {
                EngineError::Internal(format!("stored blob name {hex} is not a sha256"))
            })?;
            let state = store.verify(&sha).await?;
            Ok::<_, EngineError>((sha, state))
        })
        .buffer_unordered(CHECKS_IN_FLIGHT)
        .try_filter(|(_, state)| futures::future::ready(!matches!(state, Verification::Ok)))
        .try_collect()
        .await?;
    for (sha, state) in damaged {
        let hex = sha.to_hex();
        warn!(blob = %hex, ?state, mailbox = address, "repairing blob");
        if from_trash(store, &sha).await? {
            info!(blob = %hex, mailbox = address, "blob brought back from the store's trash");
            report.from_trash.push(hex.clone());
            report.repaired.push(hex);
            continue;
        }
        match restore(repo, store, gmail, mailbox_id, address, &sha).await? {
            Ok(()) => report.repaired.push(hex),
            Err(reason) => report.unrecoverable.push(Unrecoverable {
                sha256: hex,
                reason,
            }),
        }
    }
    info!(
        mailbox = address,
        checked = report.checked,
        repaired = report.repaired.len(),
        unrecoverable = report.unrecoverable.len(),
        "repair done"
    );
    Ok(report)
}

/// Brings the blob back from the store's trash, if it is there and whole
/// there: true when the store now holds it intact.
async fn from_trash(store: &BlobStore, sha: &Sha256) -> Result<bool, EngineError> {
    if !store.restore(sha).await? {
        return Ok(false);
    }
    Ok(match store.verify(sha).await? {
        Verification::Ok => true,
        other => {
            warn!(blob = %sha.to_hex(), state = ?other, "the trash's copy is not whole; fetching from Gmail");
            false
        }
    })
}

/// Fetches the blob's bytes again through one of its owners; `Ok(Err(why))`
/// when no owner yields exactly these bytes.
async fn restore(
    repo: &dyn AuditReads,
    store: &BlobStore,
    gmail: &GmailClient,
    mailbox_id: i64,
    address: &str,
    sha: &Sha256,
) -> Result<Result<(), String>, EngineError> {
    let owners = repo.blob_owners(mailbox_id, &sha.to_hex()).await?;
    let mut why = "no stored message references it".to_owned();
    for id in owners {
        let raw = match gmail.message_raw(address, &id).await {
            Ok(raw) => raw.raw,
            Err(GmailError::NotFound { .. }) => {
                why = format!("message {id} is gone from Gmail");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let bytes = if Sha256::digest(&raw) == *sha {
            raw
        } else {
            // A part: re-derive the message's parts and take the one with this hash.
            let parsed = tokio::task::spawn_blocking(move || mime::parse(&raw))
                .await
                .map_err(|e| EngineError::Internal(format!("parser task failed: {e}")))?;
            match parsed.ok().and_then(|p| {
                p.parts
                    .into_iter()
                    .map(|part| part.content)
                    .find(|content| Sha256::digest(content) == *sha)
            }) {
                Some(content) => content,
                None => {
                    why = format!("Gmail's bytes for message {id} no longer contain it");
                    continue;
                }
            }
        };
        store.put(bytes).await?;
        return Ok(match store.verify(sha).await? {
            Verification::Ok => Ok(()),
            other => Err(format!(
                "put back from message {id}, but the store still reports {other:?}"
            )),
        });
    }
    Ok(Err(why))
}
