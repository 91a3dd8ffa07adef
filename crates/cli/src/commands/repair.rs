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
    /// Replace what `mailingest import` stored for this message (a Gmail id
    /// `verify --sample` named) with Gmail's bytes, fetched raw (20 quota
    /// units each on the 2026 table). Repeatable; needs --mailbox.
    #[arg(long, value_name = "ID", requires = "mailbox")]
    replace_imported: Vec<String>,
    /// Print the reports as one JSON array on stdout.
    #[arg(long)]
    json: bool,
}

impl Repair {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        if let (Some(mailbox), false) = (&self.mailbox, self.replace_imported.is_empty()) {
            return replace_imported(ctx, mailbox, &self.replace_imported, self.json).await;
        }
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

/// `--replace-imported`: one run that stores Gmail's bytes for each message.
async fn replace_imported(
    ctx: &Context,
    mailbox: &str,
    ids: &[String],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let repo = ctx.database(PoolProfile::Check).await?;
    ctx.mailboxes_of_org(repo.as_ref(), Some(mailbox)).await?;
    let gmail = ctx.gmail_client(None).await?;
    let engine = ctx.engine(gmail, PoolProfile::Run).await?;
    let run = match engine
        .replace_imported(
            ingest::engine::MailboxRef::address(mailbox),
            ids.to_vec(),
            crate::signals::cancel_on_signal(),
        )
        .await
    {
        Ok(run) => run,
        Err(e) => return crate::summary::engine_error(e),
    };
    crate::summary::print(&run, json);
    Ok(Exit::from(&run).into())
}
