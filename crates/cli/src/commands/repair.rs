//! `mailingest repair`: puts back, from Gmail, every blob a row references
//! that is missing from the store or damaged (what `verify --deep` finds).
//! Exit 0 when the archive is whole again, 4 when something could not be
//! restored (each named, with why).

use std::process::ExitCode;

use clap::Args;

use crate::context::{Context, PoolProfile, StoreAccess};
use crate::exit::Exit;

#[derive(Debug, Args)]
pub struct Repair {
    /// Only this mailbox (of --org).
    #[arg(long)]
    mailbox: Option<String>,
    /// Print the reports as one JSON array on stdout.
    #[arg(long)]
    json: bool,
}

impl Repair {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let repo = ctx.database(PoolProfile::Check).await?;
        // A mailbox of another org only is a usage error, before any work.
        ctx.mailboxes_of_org(repo.as_ref(), self.mailbox.as_deref())
            .await?;
        let store = ctx.blob_store(StoreAccess::Write).await?;
        let gmail = ctx.gmail_client(None).await?;
        let reports = ingest::repair::repair(
            repo.as_ref(),
            &store,
            &gmail,
            &ctx.org,
            self.mailbox.as_deref(),
        )
        .await?;
        if self.json {
            println!("{}", serde_json::to_string(&reports)?);
        } else {
            for r in &reports {
                println!(
                    "{}: {} blobs checked, {} repaired, {} unrecoverable",
                    r.mailbox,
                    r.checked,
                    r.repaired.len(),
                    r.unrecoverable.len()
                );
                for sha in &r.repaired {
                    println!("  repaired       {sha}");
                }
                for u in &r.unrecoverable {
                    println!("  UNRECOVERABLE  {}: {}", u.sha256, u.reason);
                }
            }
        }
        Ok(if reports.iter().all(|r| r.is_whole()) {
            Exit::Done
        } else {
            Exit::VerifyProblems
        }
        .into())
    }
}
