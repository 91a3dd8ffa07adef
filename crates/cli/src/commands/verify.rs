//! `mailingest verify`: prove the copy is complete and duplicate-free.

use std::process::ExitCode;

use clap::Args;
use ingest::verify::{VerifyOptions, VerifyReport};

use crate::args::GlobalArgs;
use crate::{context, db, exit};

#[derive(Debug, Args)]
pub struct Verify {
    /// Only this mailbox.
    #[arg(long)]
    mailbox: Option<String>,
    /// Re-hash every blob in the store instead of checking it exists.
    #[arg(long)]
    deep: bool,
    /// Skip the comparison against Gmail (no API calls).
    #[arg(long)]
    offline: bool,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl Verify {
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
        let pool = db::connect(global.database_url()?, 4).await?;
        ingest::schema::migrate(&pool).await?;
        let store = context::blob_store(global).await?;
        let gmail = if self.offline {
            None
        } else {
            Some(context::gmail_client(global, None).await?)
        };
        let mut conn = pool.acquire().await?;
        let report = ingest::verify::verify(
            &mut conn,
            &store,
            gmail.as_ref(),
            &VerifyOptions {
                mailbox: self.mailbox.clone(),
                deep: self.deep,
            },
        )
        .await?;
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_text(&report);
        }
        Ok(if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(exit::VERIFY_PROBLEMS)
        })
    }
}

fn print_text(report: &VerifyReport) {
    for f in &report.findings {
        println!("PROBLEM {f}");
    }
    for m in &report.mailboxes {
        let c = &m.counts;
        println!(
            "{} {}: threads {} messages {} (deleted {}) attachments {} blobs {} (checked {}{}) runs {} ledger events {}",
            if m.findings.is_empty() {
                "ok     "
            } else {
                "PROBLEM"
            },
            m.mailbox,
            c.threads,
            c.messages,
            c.messages_deleted,
            c.attachments,
            c.blobs,
            m.blobs_checked,
            if report.deep { ", re-hashed" } else { "" },
            c.runs,
            c.ledger_events
        );
        if let Some(s) = &m.source {
            println!(
                "        gmail window {}..{}: listed {} stored {} skipped (recorded) {} missing {}",
                s.window.since.to_rfc3339(),
                s.window.until.to_rfc3339(),
                s.listed,
                s.stored,
                s.skipped_recorded,
                s.missing
            );
        }
        for f in &m.findings {
            println!("        {f}");
        }
    }
    println!(
        "{}",
        if report.ok {
            "verify: clean"
        } else {
            "verify: problems found"
        }
    );
}
