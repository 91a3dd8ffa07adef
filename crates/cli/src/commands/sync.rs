//! `mailingest sync`: apply what changed in Gmail since the last run.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use clap::Args;
use ingest::engine::{Engine, Progress, RunSummary, SyncRequest};

use crate::args::GlobalArgs;
use crate::progress::ProgressDisplay;
use crate::{context, exit, signals, summary};

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
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
        if self.fallback_days == 0 {
            eprintln!("error: --fallback-days must be at least 1");
            return Ok(ExitCode::from(exit::USAGE));
        }
        let gmail = context::gmail_client(global, None).await?;
        let engine = context::engine(global, gmail.clone(), 24).await?;
        let cancel = signals::cancel_on_signal();
        let mailboxes: Vec<String> = match (&self.mailbox, self.all) {
            (Some(m), _) => vec![m.clone()],
            (None, true) => {
                let mut conn = engine.pool.acquire().await?;
                ingest::mailboxes::list(&mut conn)
                    .await?
                    .into_iter()
                    .filter(|m| m.enabled && m.org_id == global.org)
                    .map(|m| m.provider_email)
                    .collect()
            }
            (None, false) => return Err(anyhow!("pass --mailbox EMAIL or --all")),
        };
        let mut worst = ExitCode::SUCCESS;
        let mut worst_rank = 0;
        for mailbox in mailboxes {
            if cancel.is_cancelled() {
                break;
            }
            let (code, rank) =
                match sync_one(&engine, &gmail, &mailbox, &self, cancel.clone()).await {
                    Ok(run) => {
                        summary::print(&run, self.json);
                        let rank = match run.status {
                            "completed" if run.tally.skipped.is_empty() => 0,
                            "completed" => 1,
                            "interrupted" => 4,
                            _ => 3,
                        };
                        (summary::exit_code(&run), rank)
                    }
                    Err(e) if self.all => {
                        eprintln!("error: {mailbox}: {e:#}");
                        (ExitCode::from(exit::FAILED), 3)
                    }
                    Err(e) => return summary::engine_error(e),
                };
            if rank > worst_rank {
                worst = code;
                worst_rank = rank;
            }
        }
        Ok(worst)
    }
}

async fn sync_one(
    engine: &Engine,
    gmail: &gmail::GmailClient,
    mailbox: &str,
    args: &Sync,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<RunSummary, ingest::engine::EngineError> {
    let progress = Arc::new(Progress::default());
    let display = ProgressDisplay::start(progress.clone(), gmail.clone(), mailbox.to_lowercase());
    let result = engine
        .sync(
            SyncRequest {
                mailbox: mailbox.to_owned(),
                fallback_days: args.fallback_days,
            },
            cancel,
            &progress,
        )
        .await;
    drop(display);
    result
}
