//! `mailingest gc`: removes what the store holds that no row records, and
//! unfinished writes, once older than the grace period (see `ingest::gc` for
//! why a run in flight never loses a blob to it); with
//! `--purge-deleted-older-than`, also the bytes of mail Gmail deleted long ago
//! (a `gc` run per mailbox, `blob.removed` events). `--dry-run` lists what
//! would go, with sizes, and removes nothing. Exit 75 when a mailbox was
//! skipped because another run held it.

use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use ingest::gc::{GcOptions, GcReport, PurgeRequest, STORE_OUTAGE_BUDGET};

use crate::context::{Context, PoolProfile, StoreAccess};
use crate::exit::Exit;
use crate::parse::{parse_grace, parse_purge_age};

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
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
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
        let mut options = GcOptions {
            grace: self.grace,
            dry_run: self.dry_run,
            force: self.force,
            purge: None,
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
