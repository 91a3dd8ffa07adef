//! Garbage collection of the store: objects no row records, and writes that
//! never finished, are removed once older than a grace period.
//!
//! Where garbage comes from: a run that puts blobs and dies (or fails) before
//! its batch commits leaves objects no `blobs` row records; so does a store
//! shared with a database that was reset. Objects with a row are never
//! removed by that pass. Quarantined messages keep their raw bytes, and mail
//! Gmail deleted is kept unless the operator asks ([`purge_deleted`]).
//!
//! The protocol that keeps an object a run is about to record:
//! 1. The grace period. A put that writes an object gives it a fresh
//!    modification time, and on fs a put that finds it already stored
//!    refreshes it; gc only considers objects older than the grace period
//!    (24 h by default), far longer than any put waits for its commit. This
//!    keeps gc from racing runs in the ordinary case; it is not what keeps
//!    the archive whole when clocks lie (3. is).
//! 2. The database decides. gc claims each candidate hash by inserting a
//!    placeholder copy row of its org (`blob_copies`) in its own transaction
//!    ([`GcTx`]), which fails for a hash a writer of the org recorded
//!    meanwhile. Only then, and while that
//!    transaction is still open, is the object removed (if still unmodified
//!    since the cutoff); the placeholders are deleted when it commits. A
//!    writer recording a claimed hash waits on the row until gc's transaction
//!    ends, then inserts the row itself, as new.
//! 3. The writer looks, and no clock decides. Of the two ways to keep gc off
//!    what a run is about to commit (issue 26, finding 4): writers leaving an
//!    intent gc respects, or a run never committing a row for an object it
//!    has not seen present after gc could have claimed it, this is the
//!    second. Once the writer's transaction has recorded its blob rows, no gc
//!    can start on them (they are recorded, or locked: see the backends'
//!    `upsert_blobs`), and one that claimed them before is over; so it looks
//!    up every object of the batch, those its puts wrote as well as those
//!    they found (`engine::commit`), whatever the row said. If gc removed
//!    one, the batch fails cleanly ([`EngineError::BlobCollected`]) and the
//!    next run stores the message again: a row never points at nothing,
//!    whatever the clocks say (gc's, the store's, a host that was
//!    suspended), since the order is the database's. Why not intents: they
//!    need a write before every put and an expiry measured by some clock,
//!    and the look costs one HEAD (fs: a stat) per blob per batch, inside a
//!    transaction that is open anyway.
//! 4. A wrong database is refused: when as many old objects are unrecorded as
//!    recorded, or more, gc removes nothing without `force`
//!    ([`GcError::NotThisStoresDatabase`]).
//! 5. The clocks agree: ages are the store's times against this host's clock,
//!    so gc reads the store's clock first (a probe object) and removes
//!    nothing when the two are further apart than `max_clock_skew`
//!    ([`GcError::ClockSkew`]).
//! 6. The database is not behind the store: every run leaves its mailbox's
//!    ledger head in the store as it ends (`crate::heads`); gc removes nothing
//!    while the store holds a head the database's chain lacks (a database
//!    restored from a backup, or stale: objects written since may be the
//!    only copy) ([`GcError::DatabaseBehindStore`]).
//! 7. Removal is two-phase. An object gc removes (here or by a purge) moves to
//!    the store's trash (`<prefix>/.trash/sha256/…`) and is deleted for good
//!    only after `trash_retention` (30 days by default), counted from the
//!    move. Every gc first brings back any object a `present` row records
//!    that only the trash holds (a run recorded it after gc removed it), and
//!    `repair` looks in the trash before asking Gmail. So a mistake of the
//!    rules above costs a restore, not the mail.
//!
//! Purging deleted mail ([`purge_deleted`], `--purge-deleted-older-than`)
//! removes the objects only messages deleted before a cutoff hold. Their rows
//! stay (with their ledger history); the org's copy row (`blob_copies`: each
//! org has its own, as its objects live under its own prefix) goes `present`
//! → `purging` → `purged`, in a run of kind `gc` per mailbox that holds the mailbox's
//! lease through the one run lifecycle, as backfill and sync do
//! (`engine::RunLease`; a mailbox with a run in flight is skipped) and records a
//! `blob.removed` event per object in the mailbox's chain. Only copies held by
//! the one mailbox are purged (one shared with another mailbox's messages in
//! the org waits for them); another org's rows neither keep nor touch this org's copy.
//! The protocol:
//! 1. Mark (one transaction): blobs nothing but this mailbox's long-deleted
//!    messages reference become `purging`.
//! 2. Check and remove (a transaction per chunk): lock the `purging` rows,
//!    then check again in a fresh statement; those referenced meanwhile go
//!    back to `present`. A writer holds every blob row it records until it
//!    commits (`FOR KEY SHARE` on PostgreSQL; SQLite has one writer at a
//!    time), and sets a `purging` one back to `present`, so the lock waits
//!    for it and the check sees what it recorded. The rest are removed from
//!    the store while the rows stay locked, marked `purged`, and recorded.
//! 3. A writer that stores a purged blob again sets it back to `present`
//!    (`Updated`), and, if its put found the object rather than wrote it,
//!    looks it up before committing, as for an unrecorded object.
//!
//! [`EngineError::BlobCollected`]: crate::engine::EngineError::BlobCollected

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use ledger::{EventType, NewEvent, Subject};
use serde::Serialize;
use serde_json::json;
use store::{AbandonedWrite, BlobStore, Removal, StoredObject};
use tracing::{error, info, warn};

use crate::domain::{BlobUpsert, RunKind, RunStatus};
use crate::engine::{DEFAULT_DB_OUTAGE, DEFAULT_LEASE, EngineError, RunLease, is_lease_lost};
use crate::repo::{
    CursorUpdate, Fence, GcTx, PurgeCandidate, RepoError, Repository, RunEnd, RunStart,
};

/// The default grace period: nothing younger is ever removed.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// How long a removed object stays in the store's trash before it is deleted.
pub const DEFAULT_TRASH_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// How far the store's clock may be from this host's before gc refuses to
/// judge ages by it.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Hashes looked up in the database at once.
const LOOKUP_CHUNK: usize = 1000;
/// Objects removed per gc transaction: on SQLite every writer waits while one
/// is open, so each stays short.
const REMOVE_CHUNK: usize = 100;
/// A gc transaction stops taking more objects after this long.
const TX_BUDGET: Duration = Duration::from_secs(2);
/// How long gc rides out an outage of the store while a transaction is open
/// (SQLite writers wait on it for at most a minute). For the CLI's store.
pub const STORE_OUTAGE_BUDGET: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A purge run's lease: it could not start or finish, or another run
    /// took the mailbox over.
    #[error(transparent)]
    Lease(#[from] EngineError),
    #[error("grace period {0:?} reaches before the epoch")]
    Grace(Duration),
    /// The store's clock and this host's disagree by more than the margin:
    /// ages measured against this host's clock could make a fresh object
    /// look old.
    #[error(
        "the store's clock is {} s {} this host's (more than the {max_secs} s allowed): object ages cannot be trusted, so nothing was removed; fix the clocks (NTP) or raise --max-clock-skew",
        skew_secs.abs().round(),
        if *skew_secs > 0.0 { "ahead of" } else { "behind" }
    )]
    ClockSkew { skew_secs: f64, max_secs: u64 },
    /// The store holds a ledger head the database lacks (`crate::heads`).
    #[error("{0}")]
    DatabaseBehindStore(crate::heads::DatabaseBehind),
    #[error(transparent)]
    Heads(#[from] crate::heads::HeadsError),
    #[error(
        "the database records {recorded} of the store's objects and {unrecorded} older than the grace period are unrecorded: is DATABASE_URL the database this store belongs to? Nothing was removed (--force removes them anyway)"
    )]
    NotThisStoresDatabase { recorded: u64, unrecorded: u64 },
}

/// What to collect.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Objects and unfinished writes younger than this are kept.
    pub grace: Duration,
    /// List what would go; remove nothing.
    pub dry_run: bool,
    /// Remove even when most of the store's objects are unrecorded (see
    /// [`GcError::NotThisStoresDatabase`]).
    pub force: bool,
    /// Also purge mail Gmail deleted long ago ([`purge_deleted`]).
    pub purge: Option<PurgeRequest>,
    /// Removed objects stay in the store's trash this long before they are
    /// deleted (counted from the removal).
    pub trash_retention: Duration,
    /// The largest disagreement between the store's clock and this host's
    /// that gc accepts before it removes anything.
    pub max_clock_skew: Duration,
    /// The org whose prefix `store` is: whose ledger heads gc checks.
    pub org: String,
    /// Forget the store's ledger heads the database lacks and go on (the
    /// operator accepts the database as it is; see [`GcError::DatabaseBehindStore`]).
    pub accept_restored_database: bool,
}

/// Which mailboxes' long-deleted mail to purge, and how long ago deleted.
#[derive(Debug, Clone)]
pub struct PurgeRequest {
    /// (id, address) of each mailbox.
    pub mailboxes: Vec<(i64, String)>,
    pub deleted_before: DateTime<Utc>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GRACE,
            dry_run: false,
            force: false,
            purge: None,
            trash_retention: DEFAULT_TRASH_RETENTION,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            // The CLI's default `--org`.
            org: "default".to_owned(),
            accept_restored_database: false,
        }
    }
}

/// One object gc removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Collected {
    pub sha256: String,
    pub size: u64,
    /// Seconds since the object was last modified.
    pub age_secs: u64,
}

/// One unfinished write gc discarded (or would).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Discarded {
    pub kind: &'static str,
    pub name: String,
    pub size: Option<u64>,
    pub age_secs: u64,
}

/// What a gc did, for the summary (text or `--json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub grace_secs: u64,
    /// Objects listed in the store.
    pub objects: u64,
    /// Of those, recorded by a row: kept.
    pub recorded: u64,
    /// Unrecorded but younger than the grace period: kept.
    pub young: u64,
    /// Unrecorded and old, but recorded or refreshed by a writer before gc
    /// could remove it: kept.
    pub reclaimed_by_writer: u64,
    /// As many old objects are unrecorded as recorded, or more: the database
    /// is probably not this store's (gc refuses to remove them without --force).
    pub mostly_unrecorded: bool,
    /// Removed (dry run: would be).
    pub removed: Vec<Collected>,
    pub removed_bytes: u64,
    /// Unfinished writes discarded (dry run: would be).
    pub discarded: Vec<Discarded>,
    /// Per mailbox, what purging its long-deleted mail did (empty unless asked).
    pub purge: Vec<MailboxPurge>,
    /// The store's clock against this host's, in seconds (positive: ahead).
    pub clock_skew_secs: f64,
    /// What the store's trash holds and what this gc did to it.
    pub trash: TrashReport,
    /// The ledger heads runs left in the store, against the database's chains.
    pub heads: crate::heads::HeadsReport,
}

/// The store's trash: removed objects wait there ([`GcOptions::trash_retention`])
/// before they are deleted, and come back if a row needs them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrashReport {
    /// Objects left in the trash after this gc.
    pub held: u64,
    pub held_bytes: u64,
    /// Objects a `present` row records that were only in the trash: brought
    /// back (dry run: would be). A run recorded them after gc removed them.
    pub restored: Vec<String>,
    /// Objects deleted for good, their retention over (dry run: would be).
    pub emptied: Vec<Collected>,
}

/// Runs one garbage collection of `store` against `repo`: lists the store,
/// refuses a database that records too little of it (see
/// [`GcError::NotThisStoresDatabase`]), purges long-deleted mail if asked,
/// then removes unrecorded objects and unfinished writes.
pub async fn collect(
    repo: &Arc<dyn Repository>,
    store: &BlobStore,
    options: &GcOptions,
) -> Result<GcReport, GcError> {
    let now = SystemTime::now();
    let cutoff = now
        .checked_sub(options.grace)
        .ok_or(GcError::Grace(options.grace))?;
    let mut report = GcReport {
        dry_run: options.dry_run,
        grace_secs: options.grace.as_secs(),
        ..GcReport::default()
    };
    // Ages are the store's times against this host's clock: a store (or a
    // host) whose clock is off would make fresh objects look old.
    // The probe writes: a dry run (which may have read access only) goes on
    // without the reading, and says so.
    let clock = match store.clock().await {
        Ok(clock) => Some(clock),
        Err(e) if options.dry_run => {
            warn!(error = %e, "gc --dry-run: could not read the store's clock");
            None
        }
        Err(e) => return Err(e.into()),
    };
    report.clock_skew_secs = clock.map_or(0.0, |c| c.skew_secs());
    if report.clock_skew_secs.abs() > options.max_clock_skew.as_secs_f64() {
        let skew = GcError::ClockSkew {
            skew_secs: report.clock_skew_secs,
            max_secs: options.max_clock_skew.as_secs(),
        };
        if !options.dry_run {
            return Err(skew);
        }
        warn!("gc --dry-run: {skew}");
    }
    let mut listing = store.objects();
    let mut chunk: Vec<StoredObject> = Vec::with_capacity(LOOKUP_CHUNK);
    let mut candidates: Vec<StoredObject> = Vec::new();
    loop {
        let next = listing.try_next().await?;
        let done = next.is_none();
        chunk.extend(next);
        if chunk.len() >= LOOKUP_CHUNK || (done && !chunk.is_empty()) {
            candidates.extend(
                unrecorded_and_old(repo.as_ref(), &options.org, &mut chunk, cutoff, &mut report)
                    .await?,
            );
        }
        if done {
            break;
        }
    }
    // A database that records few of the store's objects is most likely not
    // this store's database (DATABASE_URL unset, so a new embedded one; or
    // another deployment's): removing "its" garbage would empty the archive.
    let unrecorded = candidates.len() as u64;
    report.mostly_unrecorded = unrecorded > 0 && unrecorded >= report.recorded;
    if report.mostly_unrecorded && !options.dry_run && !options.force {
        return Err(GcError::NotThisStoresDatabase {
            recorded: report.recorded,
            unrecorded,
        });
    }
    // A database behind the store (restored from a backup) does not record
    // what runs wrote since: those objects may be the only copy of mail.
    let (heads, behind) = crate::heads::check(
        repo.as_ref(),
        store,
        &options.org,
        !options.dry_run,
        options.accept_restored_database && !options.dry_run,
    )
    .await?;
    report.heads = heads;
    if let Some(behind) = behind {
        if !options.dry_run {
            return Err(GcError::DatabaseBehindStore(behind));
        }
        warn!("gc --dry-run: {behind}");
    }
    if let Some(purge) = &options.purge {
        report.purge = purge_deleted(
            repo,
            store,
            &purge.mailboxes,
            purge.deleted_before,
            options.dry_run,
        )
        .await?;
    }
    if options.dry_run {
        report
            .removed
            .extend(candidates.iter().map(|o| collected(o, now)));
    } else {
        let mut rest: &[StoredObject] = &candidates;
        while !rest.is_empty() {
            let part = &rest[..rest.len().min(REMOVE_CHUNK)];
            let done = remove(
                repo.as_ref(),
                &options.org,
                store,
                part,
                cutoff,
                now,
                &mut report,
            )
            .await?;
            rest = &rest[done..];
        }
    }
    for write in store.abandoned_writes(cutoff).await? {
        if !options.dry_run {
            store.discard(&write).await?;
            info!(kind = write.kind.as_str(), name = %write.name, "gc: discarded an unfinished write");
        }
        report.discarded.push(discarded(&write, now));
    }
    tend_trash(repo.as_ref(), store, options, now, &mut report.trash).await?;
    report.removed_bytes = report.removed.iter().map(|c| c.size).sum();
    Ok(report)
}

/// The trash's second phase: an object a `present` row records but the store
/// no longer holds comes back (a run recorded it after gc removed it: clock
/// skew, a database restored from a backup); one whose retention is over is
/// deleted; the rest wait.
async fn tend_trash(
    repo: &dyn Repository,
    store: &BlobStore,
    options: &GcOptions,
    now: SystemTime,
    trash: &mut TrashReport,
) -> Result<(), GcError> {
    let Some(expired) = now.checked_sub(options.trash_retention) else {
        return Err(GcError::Grace(options.trash_retention));
    };
    let trashed: Vec<StoredObject> = store.trashed().try_collect().await?;
    for chunk in trashed.chunks(LOOKUP_CHUNK) {
        let hashes: Vec<String> = chunk.iter().map(|o| o.sha256.to_string()).collect();
        let present = repo.blobs_present(&options.org, &hashes).await?;
        for object in chunk {
            let hex = object.sha256.to_string();
            if present.contains(&hex) && store.head(&object.sha256).await?.is_none() {
                if !options.dry_run && !store.restore(&object.sha256).await? {
                    continue; // gone meanwhile (another gc restored it)
                }
                warn!(sha256 = %hex, "gc: a recorded object was only in the trash; brought back");
                trash.restored.push(hex);
            } else if object.modified <= expired {
                if !options.dry_run {
                    match store
                        .remove_trashed_if_unmodified(&object.sha256, expired)
                        .await?
                    {
                        Removal::Removed => {}
                        _ => continue, // restored or trashed anew meanwhile
                    }
                    info!(sha256 = %hex, size = object.size, "gc: deleted an object from the trash");
                }
                trash.emptied.push(collected(object, now));
            } else {
                trash.held += 1;
                trash.held_bytes += object.size;
            }
        }
    }
    Ok(())
}

/// Brings these objects back from the store's trash (`gc --restore`); returns
/// those that were there.
pub async fn restore_from_trash(
    store: &BlobStore,
    sha256s: &[store::Sha256],
) -> Result<Vec<String>, GcError> {
    let mut restored = Vec::new();
    for sha in sha256s {
        if store.restore(sha).await? {
            info!(sha256 = %sha, "gc: restored from the trash");
            restored.push(sha.to_string());
        }
    }
    Ok(restored)
}

/// Every object in the store's trash (`gc --restore-all`).
pub async fn trashed(store: &BlobStore) -> Result<Vec<store::Sha256>, GcError> {
    let objects: Vec<StoredObject> = store.trashed().try_collect().await?;
    Ok(objects.into_iter().map(|o| o.sha256).collect())
}

/// Drains `chunk`; returns the objects no row records that are older than the cutoff.
async fn unrecorded_and_old(
    repo: &dyn Repository,
    org: &str,
    chunk: &mut Vec<StoredObject>,
    cutoff: SystemTime,
    report: &mut GcReport,
) -> Result<Vec<StoredObject>, GcError> {
    let hashes: Vec<String> = chunk.iter().map(|o| o.sha256.to_string()).collect();
    let recorded = repo.blobs_with_rows(org, &hashes).await?;
    let mut candidates = Vec::new();
    for object in chunk.drain(..) {
        report.objects += 1;
        if recorded.contains(&object.sha256.to_string()) {
            report.recorded += 1;
        } else if object.modified > cutoff {
            report.young += 1;
        } else {
            candidates.push(object);
        }
    }
    Ok(candidates)
}

/// Claims `objects` in one gc transaction, removes those claimed and still
/// unmodified, and ends the transaction (see the module's protocol); returns
/// how many of `objects` it dealt with. It stops early after [`TX_BUDGET`]:
/// on SQLite every writer waits while it is open.
async fn remove(
    repo: &dyn Repository,
    org: &str,
    store: &BlobStore,
    objects: &[StoredObject],
    cutoff: SystemTime,
    now: SystemTime,
    report: &mut GcReport,
) -> Result<usize, GcError> {
    let rows: Vec<BlobUpsert> = objects
        .iter()
        .map(|o| BlobUpsert {
            sha256: o.sha256.to_string(),
            size: i64::try_from(o.size).unwrap_or(i64::MAX),
            storage_key: o.key.clone(),
        })
        .collect();
    let mut tx: Box<dyn GcTx> = repo.begin_gc(org).await?;
    let claimed: HashSet<String> = tx.claim_unrecorded(&rows).await?.into_iter().collect();
    let started = std::time::Instant::now();
    // Whatever happens to the objects, the placeholders go: finish runs even
    // after a store error (which is then reported).
    let mut outcome = Ok(());
    let mut dealt = 0;
    for object in objects {
        if dealt > 0 && started.elapsed() > TX_BUDGET {
            break;
        }
        dealt += 1;
        if !claimed.contains(&object.sha256.to_string()) {
            report.reclaimed_by_writer += 1;
            continue;
        }
        // The claim must still hold as the object goes: a transaction that
        // ended (connection lost, server restarted) no longer keeps writers off.
        if let Err(e) = tx.still_open().await {
            outcome = Err(e.into());
            break;
        }
        // Never abandoned midway (no timeout here): a removal still running
        // after the claim is released could take an object a writer has just
        // recorded. The store's outage budget bounds it (gc opens the store
        // with a short one).
        let removal = store.trash_if_unmodified(&object.sha256, cutoff).await;
        // And the claim held all along, or a writer may have recorded it meanwhile.
        if let Err(e) = tx.still_open().await {
            error!(sha256 = %object.sha256, "gc lost its database transaction while removing \
                this object; if a run recorded it meanwhile, `verify --deep` names it and \
                `repair` restores it");
            outcome = Err(e.into());
            break;
        }
        match removal {
            Ok(Removal::Removed) => {
                info!(sha256 = %object.sha256, size = object.size, "gc: moved an unrecorded object to the trash");
                report.removed.push(collected(object, now));
            }
            Ok(Removal::Kept) => report.reclaimed_by_writer += 1,
            Ok(_) => {} // gone already
            Err(e) => {
                outcome = Err(e.into());
                break;
            }
        }
    }
    tx.finish().await?;
    outcome.map(|()| dealt)
}

fn age(modified: SystemTime, now: SystemTime) -> u64 {
    now.duration_since(modified).unwrap_or_default().as_secs()
}

fn collected(object: &StoredObject, now: SystemTime) -> Collected {
    Collected {
        sha256: object.sha256.to_string(),
        size: object.size,
        age_secs: age(object.modified, now),
    }
}

fn discarded(write: &AbandonedWrite, now: SystemTime) -> Discarded {
    Discarded {
        kind: write.kind.as_str(),
        name: write.name.clone(),
        size: write.size,
        age_secs: age(write.started, now),
    }
}

/// What purging one mailbox's long-deleted mail did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxPurge {
    pub mailbox: String,
    /// The `gc` run that did it (none in a dry run, or when skipped).
    pub run_id: Option<i64>,
    /// Why nothing was done (another run holds the mailbox).
    pub skipped: Option<String>,
    /// Objects removed (dry run: that would be), with the messages that held them.
    pub removed: Vec<PurgeCandidate>,
    pub removed_bytes: u64,
    /// Candidates referenced again before they could be removed: kept.
    pub referenced_again: u64,
}

/// Removes, for each of `mailboxes` (id, address), the objects only its
/// messages deleted before `deleted_before` hold (see the module docs). Each
/// mailbox's purge is a run of its own (`engine::RunLease`: its background
/// heartbeat keeps the lease alive across chunks).
pub async fn purge_deleted(
    repo: &Arc<dyn Repository>,
    store: &BlobStore,
    mailboxes: &[(i64, String)],
    deleted_before: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<MailboxPurge>, GcError> {
    let mut reports = Vec::with_capacity(mailboxes.len());
    for (mailbox_id, address) in mailboxes {
        let mut report = MailboxPurge {
            mailbox: address.clone(),
            ..MailboxPurge::default()
        };
        if dry_run {
            report.removed = repo.purge_candidates(*mailbox_id, deleted_before).await?;
        } else {
            let start = RunStart {
                mailbox_id: *mailbox_id,
                kind: RunKind::Gc,
                window: None,
                start_history_id: None,
                stale_after: DEFAULT_LEASE,
            };
            let lease =
                match RunLease::start(repo.clone(), &start, address, DEFAULT_DB_OUTAGE).await {
                    Ok(lease) => lease,
                    Err(EngineError::Locked { run_id, .. }) => {
                        report.skipped = Some(match run_id {
                            Some(id) => format!("run {id} holds the mailbox"),
                            None => "a starting run holds the mailbox".to_owned(),
                        });
                        reports.push(report);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
            report.run_id = Some(lease.run_id());
            let purged = purge_mailbox(
                repo.as_ref(),
                store,
                lease.fence(),
                deleted_before,
                &mut report,
            )
            .await;
            if let Err(GcError::Repo(e)) = &purged
                && is_lease_lost(e)
            {
                return Err(lease.lost().into());
            }
            let counts = json!({
                "blobs_removed": report.removed.len(),
                "bytes_removed": report.removed.iter().map(|c| c.size).sum::<i64>(),
                "referenced_again": report.referenced_again,
            });
            let end = RunEnd {
                status: if purged.is_ok() {
                    RunStatus::Completed
                } else {
                    RunStatus::Failed
                },
                counts,
                error: purged.as_ref().err().map(ToString::to_string),
                cursor: CursorUpdate::Keep,
            };
            // The purge's own result is what gc reports; a run left `running`
            // is marked interrupted by the mailbox's next run.
            if let Err(e) = lease.finish(&end).await {
                warn!(mailbox = %address, error = %e, "gc: could not record the end of the purge run");
            }
            purged?;
        }
        report.removed_bytes = report
            .removed
            .iter()
            .map(|c| u64::try_from(c.size).unwrap_or(0))
            .sum();
        reports.push(report);
    }
    Ok(reports)
}

async fn purge_mailbox(
    repo: &dyn Repository,
    store: &BlobStore,
    fence: Fence,
    deleted_before: DateTime<Utc>,
    report: &mut MailboxPurge,
) -> Result<(), GcError> {
    let mut tx = repo.begin(fence).await?;
    let marked = tx.mark_purging(deleted_before).await?;
    tx.commit().await?;
    // Unconditional: the database, not the object's age, decides here.
    let any_time = SystemTime::now() + Duration::from_secs(365 * 86400);
    let mut pending: Vec<String> = marked;
    while !pending.is_empty() {
        let take = pending.len().min(REMOVE_CHUNK);
        let chunk: Vec<String> = pending.drain(..take).collect();
        let mut tx = repo.begin(fence).await?;
        let locked = tx.lock_purging(&chunk, deleted_before).await?;
        report.referenced_again += (chunk.len() - locked.len()) as u64;
        let mut removed = Vec::with_capacity(locked.len());
        let mut events = Vec::with_capacity(locked.len());
        // Bounded in time like the unrecorded pass: on SQLite every writer
        // waits while this transaction is open. What is left stays
        // `purging` and goes first into the next chunk, locked and checked
        // again there.
        let started = std::time::Instant::now();
        let mut dealt = 0;
        for candidate in &locked {
            if dealt > 0 && started.elapsed() > TX_BUDGET {
                break;
            }
            dealt += 1;
            let candidate = candidate.clone();
            let sha: store::Sha256 = candidate.sha256.parse()?;
            // Into the trash, or already gone (an earlier gc died after moving it).
            store.trash_if_unmodified(&sha, any_time).await?;
            events.push(NewEvent::new(
                EventType::BlobRemoved,
                Subject::Blob(candidate.sha256.clone()),
                json!({
                    "size": candidate.size,
                    "messages": candidate.messages,
                    "reason": "purge_deleted",
                    "deleted_before": deleted_before,
                }),
            ));
            removed.push(candidate);
        }
        let hashes: Vec<String> = removed.iter().map(|c| c.sha256.clone()).collect();
        tx.mark_purged(&hashes).await?;
        tx.append_events(&events).await?;
        tx.commit().await?;
        for c in &removed {
            info!(sha256 = %c.sha256, size = c.size, "gc: purged the object of deleted mail (moved to the trash)");
        }
        report.removed.extend(removed);
        let left = locked[dealt..].iter().map(|c| c.sha256.clone());
        pending.splice(0..0, left);
    }
    Ok(())
}
