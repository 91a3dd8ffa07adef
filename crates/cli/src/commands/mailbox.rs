//! `mailingest mailbox add | list | disable | requeue`: the set of mailboxes
//! served, and the operator's handle on a mailbox's quarantine.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use ingest::domain::{MailboxAddress, Outcome};

use crate::context::{Context, PoolProfile};
use crate::exit;

#[derive(Debug, Args)]
pub struct Mailbox {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Serve a mailbox (or re-enable it).
    Add {
        email: String,
        /// Minutes between scheduled syncs.
        #[arg(long)]
        interval_minutes: Option<u64>,
    },
    /// List the mailboxes of --org and their schedule.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop scheduling a mailbox (its data is kept).
    Disable { email: String },
    /// Try the mailbox's quarantined messages again at its next run, given-up
    /// ones included (one more attempt each; `status --quarantined` lists them).
    Requeue { email: String },
}

impl Mailbox {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let repo = ctx.database(PoolProfile::Small).await?;
        match self.action {
            Action::Add {
                email,
                interval_minutes,
            } => {
                let email = match MailboxAddress::new(&email) {
                    Ok(email) => email,
                    Err(e) => return Ok(exit::usage_error(e.to_string())),
                };
                let interval = interval_minutes.map(|m| std::time::Duration::from_secs(m * 60));
                let (id, outcome) = repo.add_mailbox(&ctx.org, email.as_str(), interval).await?;
                let what = match outcome {
                    Outcome::Inserted => "added",
                    Outcome::Updated => "updated",
                    Outcome::Unchanged => "already served",
                };
                println!("mailbox {email} ({}) {what} [id {id}]", ctx.org);
            }
            Action::List { json } => {
                let rows = repo.list_mailboxes(&ctx.org).await?;
                if json {
                    println!("{}", serde_json::to_string(&rows)?);
                } else {
                    for m in rows {
                        println!(
                            "{:<8} {:<40} {:<12} every {}s  next {}  cursor {}",
                            if m.enabled { "enabled" } else { "disabled" },
                            m.provider_email,
                            m.org_id,
                            m.sync_interval_secs,
                            m.next_sync_at.to_rfc3339(),
                            m.history_id
                                .map(|h| h.to_string())
                                .unwrap_or_else(|| "-".into())
                        );
                    }
                }
            }
            Action::Disable { email } => {
                let address = MailboxAddress::normalized(&email);
                if !repo.disable_mailbox(&ctx.org, address.as_str()).await? {
                    return Err(ctx.no_such_mailbox(address.as_str()));
                }
                println!("mailbox {address} disabled");
            }
            Action::Requeue { email } => {
                let email = MailboxAddress::normalized(&email);
                let Some(mailbox) = ctx.find_mailbox(repo.as_ref(), email.as_str()).await? else {
                    return Err(ctx.no_such_mailbox(email.as_str()));
                };
                let n = repo.requeue_quarantined(mailbox.id).await?;
                println!("mailbox {email}: {n} quarantined message(s) due at its next run");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
