//! The subcommands: one module each, with its arguments and `run(self, ctx)`,
//! and the enum that names them. Commands are handed the checked global
//! options (`Context`); none of them reads the raw command line.

pub mod auth;
pub mod backfill;
pub mod changes;
pub mod export;
pub mod gc;
pub mod import;
pub mod mailbox;
pub mod migrate;
pub mod orphans;
pub mod repair;
pub mod show;
pub mod status;
pub mod sync;
pub mod verify;
pub mod worker;

use std::process::ExitCode;

use clap::Subcommand;

use crate::context::Context;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database schema (safe to repeat).
    Migrate(migrate::Migrate),
    /// Back up a time window of one mailbox.
    Backfill(backfill::Backfill),
    /// Seed a mailbox from Google Takeout mbox files, at no quota per message.
    Import(import::Import),
    /// Archive entries `import --keep-unmatched` kept that are no message of the mailbox.
    Orphans(orphans::Orphans),
    /// Apply what changed in Gmail since the last run.
    Sync(sync::Sync),
    /// Sync due mailboxes forever (several workers may share one database).
    Worker(worker::Worker),
    /// Manage the mailboxes served.
    Mailbox(mailbox::Mailbox),
    /// Check that every copy is complete, duplicate-free and untampered.
    Verify(verify::Verify),
    /// Put back from Gmail every missing or damaged blob `verify --deep` finds.
    Repair(repair::Repair),
    /// Per mailbox: last run, cursor age, counts, schedule.
    Status(status::Status),
    /// A mailbox as the ledger says it was at an instant (--as-of).
    Show(show::Show),
    /// Mail back out, byte for byte: an mbox file or .eml files.
    Export(export::Export),
    /// Remove store objects no row records, and unfinished writes, older than a grace period.
    Gc(gc::Gc),
    /// The org's ledger events, in commit order, for downstream systems
    /// (stdout or a webhook; --consumer keeps the position).
    Changes(changes::Changes),
    /// Google sign-in for the installed-app flow.
    Auth(auth::Auth),
}

impl Command {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        match self {
            Command::Migrate(cmd) => cmd.run(ctx).await,
            Command::Backfill(cmd) => cmd.run(ctx).await,
            Command::Import(cmd) => cmd.run(ctx).await,
            Command::Orphans(cmd) => cmd.run(ctx).await,
            Command::Sync(cmd) => cmd.run(ctx).await,
            Command::Worker(cmd) => cmd.run(ctx).await,
            Command::Mailbox(cmd) => cmd.run(ctx).await,
            Command::Verify(cmd) => cmd.run(ctx).await,
            Command::Repair(cmd) => cmd.run(ctx).await,
            Command::Status(cmd) => cmd.run(ctx).await,
            Command::Show(cmd) => cmd.run(ctx).await,
            Command::Export(cmd) => cmd.run(ctx).await,
            Command::Gc(cmd) => cmd.run(ctx).await,
            Command::Changes(cmd) => cmd.run(ctx).await,
            Command::Auth(cmd) => cmd.run().await,
        }
    }
}
