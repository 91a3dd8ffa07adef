//! `mailingest sync`: apply what changed in Gmail since the last run.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use clap::Args;
use ingest::domain::MailboxAddress;
use ingest::engine::{Engine, MailboxRef, Progress, RunSummary, SyncRequest};

use crate::context::{Context, PoolProfile};
use crate::exit::{self, Exit};
use crate::progress::ProgressDisplay;
use crate::{signals, summary};

#[derive(Debug, Args)]
pub struct Sync {
    /// The mailbox to sync.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    mailbox: Option<String>,
    /// Every enabled mailbox, one after another.
    #[arg(long)]
    all: bool,
    /// Days backed up when there is no cursor yet or history has expired.
    #[arg(long, default_value_t = 7)]
    fallback_days: u32,
    /// One JSON object per mailbox on stdout.
    #[arg(long)]
    json: bool,
}

impl Sync {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        if self.fallback_days == 0 {
            return Ok(exit::usage_error("--fallback-days must be at least 1"));
        }
        let gmail = ctx.gmail_client(None).await?;
        let engine = ctx.engine(gmail.clone(), PoolProfile::Run).await?;
        let cancel = signals::cancel_on_signal();
        let mailboxes: Vec<MailboxRef> = match (&self.mailbox, self.all) {
            (Some(m), _) => vec![MailboxRef::address(m)],
            (None, true) => engine
                .repo
                .list_mailboxes(&ctx.org)
                .await?
                .into_iter()
                .filter(|m| m.enabled)
                .map(|m| MailboxRef::Known {
                    id: m.id,
                    org: m.org_id,
                    email: MailboxAddress::normalized(&m.provider_email),
                })
                .collect(),
            (None, false) => return Err(anyhow!("pass --mailbox EMAIL or --all")),
        };
        let mut worst = Exit::Done;
        for mailbox in mailboxes {
            if cancel.is_cancelled() {
                break;
            }
            let exit = match sync_one(&engine, &gmail, &mailbox, &self, cancel.clone()).await {
                Ok(run) => {
                    summary::print(&run, self.json);
                    Exit::from(&run)
                }
                Err(e) if self.all => {
                    eprintln!("error: {}: {e}", mailbox.email());
                    Exit::of_error(&e).unwrap_or(Exit::Failed)
                }
                Err(e) => return summary::engine_error(e),
            };
            worst = worst.max(exit);
        }
        Ok(worst.into())
    }
}

async fn sync_one(
    engine: &Engine,
    gmail: &gmail::GmailClient,
    mailbox: &MailboxRef,
    args: &Sync,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<RunSummary, ingest::engine::EngineError> {
    let progress = Arc::new(Progress::default());
    let display =
        ProgressDisplay::start(progress.clone(), gmail.clone(), mailbox.email().to_owned());
    let result = engine
        .sync(
            SyncRequest {
                mailbox: mailbox.clone(),
                fallback_days: args.fallback_days,
            },
            cancel,
            &progress,
        )
        .await;
    drop(display);
    result
}
