//! `mailingest verify`: prove the copy is complete and duplicate-free.

use std::process::ExitCode;

use clap::Args;
use ingest::verify::{VerifyOptions, VerifyReport};

use crate::context::{Context, PoolProfile, StoreAccess};
use crate::exit::Exit;
use crate::parse::parse_head;

#[derive(Debug, Args)]
pub struct Verify {
    /// Only this mailbox (of --org).
    #[arg(long)]
    mailbox: Option<String>,
    /// Re-hash every blob in the store instead of checking it exists.
    #[arg(long)]
    deep: bool,
    /// Skip the comparison against Gmail (no API calls).
    #[arg(long, conflicts_with = "full")]
    offline: bool,
    /// Compare the whole mailbox with Gmail, both ways (messages.list: 5
    /// quota units per 500 messages), not only the last backfill window.
    #[arg(long)]
    full: bool,
    /// A ledger head anchored earlier (SEQ:HASH, as a run summary prints it):
    /// the mailbox's chain must still extend it. Needs --mailbox.
    #[arg(long, value_name = "SEQ:HASH", value_parser = parse_head, requires = "mailbox")]
    expect_head: Option<ledger::ChainHead>,
    /// Fetch N random messages `mailingest import` stored, raw (20 quota
    /// units each on the 2026 table), and compare their bytes with what the
    /// import stored: a difference is a problem naming the message.
    #[arg(long, value_name = "N", conflicts_with = "offline")]
    sample: Option<u32>,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl Verify {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let repo = ctx.database(PoolProfile::Check).await?;
        // A mailbox of another org only is a usage error, before any work.
        ctx.mailboxes_of_org(repo.as_ref(), self.mailbox.as_deref())
            .await?;
        let store = ctx.blob_store(StoreAccess::Read).await?;
        let gmail = if self.offline {
            None
        } else {
            Some(ctx.gmail_client(None).await?)
        };
        let started = chrono::Utc::now();
        let report = ingest::verify::verify(
            repo.as_ref(),
            &store,
            gmail.as_ref(),
            &VerifyOptions {
                org: ctx.org.clone(),
                mailbox: self.mailbox.clone(),
                deep: self.deep,
                full: self.full,
                expect_head: self.expect_head.clone(),
                sample: self.sample,
            },
        )
        .await?;
        // A completeness check by hand counts like the worker's scheduled one:
        // `status` shows it, and it clears what only a check can clear.
        for m in &report.mailboxes {
            if let Some(check) = report.completeness_check(m.mailbox_id) {
                repo.record_verify(ingest::domain::MailboxId(m.mailbox_id), started, &check)
                    .await?;
            }
        }
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_text(&report);
        }
        Ok(if report.ok {
            Exit::Done
        } else {
            Exit::VerifyProblems
        }
        .into())
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
        if let Some(f) = &m.full {
            println!(
                "        gmail (whole mailbox): listed {} stored live {} skipped (recorded) {} missing here {} gone from gmail {}",
                f.listed, f.stored_live, f.skipped_recorded, f.missing_here, f.gone_there
            );
        }
        if let Some(s) = &m.sample {
            println!(
                "        imported sample: {} fetched, {} byte-identical, {} differ, {} gone from gmail",
                s.sampled, s.identical, s.differ, s.gone
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
