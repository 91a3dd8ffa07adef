//! `mailingest gc`: removes what the store holds that no row records, and
//! unfinished writes, once older than the grace period (see `ingest::gc` for
//! why a run in flight never loses a blob to it); with
//! `--purge-deleted-older-than`, also the bytes of mail Gmail deleted long ago
//! (a `gc` run per mailbox, `blob.removed` events). `--dry-run` lists what
//! would go, with sizes, and removes nothing. Exit 75 when a mailbox was
//! skipped because another run held it. What gc removes goes to the store's
//! trash first (`--trash-retention`, 30 days), and `--restore` /
//! `--restore-all` bring it back. Exit 1, removing nothing, when the store
//! holds a ledger head the database lacks (a database restored from a backup:
//! `--accept-restored-database` after the README's procedure).

use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use ingest::gc::{GcOptions, GcReport, PurgeRequest, STORE_OUTAGE_BUDGET};

use crate::context::{Context, PoolProfile, StoreAccess};
use crate::exit::Exit;
use crate::parse::{parse_duration, parse_grace, parse_purge_age};

#[derive(Debug, Args)]
pub struct Gc {
    /// Keep everything modified more recently than this (`24h`, `7d`; at least 1h).
    #[arg(long, value_parser = parse_grace, default_value = "24h")]
    grace: Duration,
    /// List what would be removed, with sizes; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Remove unrecorded objects even when the database records fewer of the
    /// store's objects than are unrecorded (a wrong DATABASE_URL looks like that).
    #[arg(long)]
    force: bool,
    /// Also remove the stored bytes of mail Gmail deleted longer ago than this
    /// (`90d`): their rows and ledger history stay, export skips them.
    #[arg(long, value_parser = parse_purge_age)]
    purge_deleted_older_than: Option<Duration>,
    /// With --purge-deleted-older-than: only this mailbox (of --org).
    #[arg(long, requires = "purge_deleted_older_than")]
    mailbox: Option<String>,
    /// How long removed objects stay in the store's trash before they are
    /// deleted for good (`30d`); a row that needs one meanwhile gets it back.
    #[arg(long, value_parser = parse_duration, default_value = "30d")]
    trash_retention: Duration,
    /// Refuse to remove anything when the store's clock and this host's
    /// disagree by more than this (`60s`): ages would be wrong.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    max_clock_skew: Duration,
    /// Bring this object (a sha256) back from the trash; repeatable. Nothing
    /// else is done.
    #[arg(long, value_name = "SHA256", value_parser = parse_sha256, conflicts_with_all = ["dry_run", "restore_all"])]
    restore: Vec<store::Sha256>,
    /// Bring every object in the trash back. Nothing else is done.
    #[arg(long, conflicts_with = "dry_run")]
    restore_all: bool,
    /// Go on although the store holds ledger heads the database lacks (a
    /// database restored from a backup): forget those heads, and remove what
    /// the database does not record, including objects only the lost rows
    /// recorded. See README, "Restoring a database safely".
    #[arg(long, conflicts_with = "dry_run")]
    accept_restored_database: bool,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_sha256(s: &str) -> Result<store::Sha256, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a sha256 (64 hex digits)"))
}

impl Gc {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let repo = ctx.database(PoolProfile::Small).await?;
        let access = if self.dry_run {
            StoreAccess::Read
        } else {
            StoreAccess::Write
        };
        // A short outage budget: gc holds a database transaction open while
        // it removes (SQLite writers wait on it).
        let store = ctx.blob_store_within(access, STORE_OUTAGE_BUDGET).await?;
        if self.restore_all || !self.restore.is_empty() {
            let wanted = if self.restore_all {
                ingest::gc::trashed(&store).await?
            } else {
                self.restore.clone()
            };
            let restored = ingest::gc::restore_from_trash(&store, &wanted).await?;
            if self.json {
                println!("{}", serde_json::json!({ "restored": restored }));
            } else {
                for sha in &restored {
                    println!("restored {sha}");
                }
                println!(
                    "gc --restore: {} of {} objects brought back from the trash",
                    restored.len(),
                    wanted.len()
                );
            }
            return Ok(Exit::Done.into());
        }
        let mut options = GcOptions {
            grace: self.grace,
            dry_run: self.dry_run,
            force: self.force,
            purge: None,
            trash_retention: self.trash_retention,
            max_clock_skew: self.max_clock_skew,
            org: ctx.org.clone(),
            accept_restored_database: self.accept_restored_database,
        };
        if let Some(age) = self.purge_deleted_older_than {
            let deleted_before = chrono::Duration::from_std(age)
                .ok()
                .and_then(|d| Utc::now().checked_sub_signed(d))
                .ok_or_else(|| anyhow::anyhow!("--purge-deleted-older-than is too long"))?;
            let mailboxes: Vec<(i64, String)> = ctx
                .mailboxes_of_org(repo.as_ref(), self.mailbox.as_deref())
                .await?
                .into_iter()
                .map(|m| (m.id, m.provider_email))
                .collect();
            options.purge = Some(PurgeRequest {
                mailboxes,
                deleted_before,
            });
        }
        let report = ingest::gc::collect(&repo, &store, &options).await?;
        if report.mostly_unrecorded && self.dry_run && !self.force {
            eprintln!(
                "warning: the database records {} of the store's objects and {} older than \
                 the grace period are unrecorded: is DATABASE_URL the database this store \
                 belongs to? gc will refuse to remove them without --force",
                report.recorded,
                report.removed.len()
            );
        }
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_text(&report);
        }
        // A mailbox another run held is left for the next gc: EX_TEMPFAIL, as for runs.
        Ok(if report.purge.iter().any(|p| p.skipped.is_some()) {
            Exit::Locked
        } else {
            Exit::Done
        }
        .into())
    }
}

fn print_text(r: &GcReport) {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for p in &r.purge {
        if let Some(why) = &p.skipped {
            println!("{}: skipped, {why}; the next gc purges it", p.mailbox);
            continue;
        }
        for c in &p.removed {
            println!(
                "{}: {verb} {} ({}) of deleted {}",
                p.mailbox,
                c.sha256,
                bytes(u64::try_from(c.size).unwrap_or(0)),
                c.messages.join(", ")
            );
        }
        println!(
            "{}: purge{} {verb} {} objects ({}) of mail deleted long ago{}",
            p.mailbox,
            p.run_id
                .map_or_else(String::new, |id| format!(" (run {id})")),
            p.removed.len(),
            bytes(p.removed_bytes),
            if p.referenced_again > 0 {
                format!("; {} referenced again, kept", p.referenced_again)
            } else {
                String::new()
            }
        );
    }
    for c in &r.removed {
        println!(
            "{verb} {} ({}, unmodified for {})",
            c.sha256,
            bytes(c.size),
            age(c.age_secs)
        );
    }
    for d in &r.discarded {
        let size = d
            .size
            .map_or_else(String::new, |s| format!("{}, ", bytes(s)));
        println!(
            "{} unfinished {} {} ({size}started {} ago)",
            if r.dry_run {
                "would discard"
            } else {
                "discarded"
            },
            d.kind.replace('_', " "),
            d.name,
            age(d.age_secs)
        );
    }
    println!(
        "gc{}: {} objects; {} recorded, {} younger than {}, {} taken back by a writer; {verb} {} ({}); {} unfinished writes",
        if r.dry_run { " (dry run)" } else { "" },
        r.objects,
        r.recorded,
        r.young,
        age(r.grace_secs),
        r.reclaimed_by_writer,
        r.removed.len(),
        bytes(r.removed_bytes),
        r.discarded.len()
    );
    let t = &r.trash;
    for sha in &t.restored {
        println!(
            "{} {sha} from the trash: a row records it",
            if r.dry_run {
                "would bring back"
            } else {
                "brought back"
            }
        );
    }
    if !r.heads.lacking.is_empty() {
        println!(
            "ledger heads: {} the database lacks{}",
            r.heads.lacking.len(),
            if r.dry_run { "" } else { ", forgotten" }
        );
    }
    println!(
        "trash: {} objects ({}) held; {} {} for good; {} brought back",
        t.held,
        bytes(t.held_bytes),
        if r.dry_run { "would delete" } else { "deleted" },
        t.emptied.len(),
        t.restored.len()
    );
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn age(secs: u64) -> String {
    match secs {
        s if s >= 86400 => format!("{}d{}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}m{}s", s / 60, s % 60),
    }
}
