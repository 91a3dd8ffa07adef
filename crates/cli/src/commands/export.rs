//! `mailingest export`: mail back out of the archive, byte for byte (see
//! `ingest::export`). A bar on a terminal; one line per message that could not
//! be exported, and exit 1 if any could not (the rest are exported).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ingest::export::ExportFormat;
use ingest::repo::ExportFilter;

use crate::context::{Context, PoolProfile, StoreAccess};
use crate::exit::Exit;
use crate::parse::parse_time;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// One mbox file with Takeout's X-GM-THRID and X-Gmail-Labels headers.
    Mbox,
    /// One file per message: OUT/<yyyy>/<mm>/<gmail id>.eml.
    Eml,
}

#[derive(Debug, Args)]
pub struct Export {
    #[arg(long, value_enum)]
    format: Format,
    /// The mbox file to create (never overwritten), or the directory of .eml files.
    #[arg(long)]
    out: PathBuf,
    /// Only this mailbox (of --org); all of the org's otherwise. Required for eml.
    #[arg(long)]
    mailbox: Option<String>,
    /// Messages whose internalDate is at or after T (RFC 3339, YYYY-MM-DD or epoch seconds).
    #[arg(long, value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Messages whose internalDate is before T.
    #[arg(long, value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Only messages with this label: its name in Gmail (Work/2026), its id
    /// (INBOX, Label_12, …) or Takeout's word for a system label (Inbox).
    #[arg(long)]
    label: Option<String>,
    /// Messages Gmail deleted, kept here, too.
    #[arg(long)]
    include_deleted: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl Export {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let format = match self.format {
            Format::Mbox => ExportFormat::Mbox,
            Format::Eml => ExportFormat::Eml,
        };
        if format == ExportFormat::Eml && self.mailbox.is_none() {
            anyhow::bail!("--format eml needs --mailbox: its file names are one mailbox's ids");
        }
        let repo = ctx.database(PoolProfile::Small).await?;
        let store = ctx.blob_store(StoreAccess::Read).await?;
        let mailbox_ids: Vec<i64> = ctx
            .mailboxes_of_org(repo.as_ref(), self.mailbox.as_deref())
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect();
        let filter = ExportFilter {
            mailbox_ids,
            since: self.since,
            until: self.until,
            label: self.label.clone(),
            include_deleted: self.include_deleted,
        };
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {pos} messages exported",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        let shown = bar.clone();
        let summary = ingest::export::export(
            repo.as_ref(),
            &store,
            &filter,
            format,
            &self.out,
            &move |done| {
                if let Some(bar) = &shown {
                    bar.set_position(done);
                }
            },
        )
        .await?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        for f in &summary.failed {
            eprintln!("error: message {} of {}: {}", f.message, f.mailbox, f.error);
        }
        if self.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            println!(
                "exported {} messages ({} bytes) to {}{}{}{}",
                summary.exported,
                summary.bytes,
                self.out.display(),
                if summary.already_there > 0 {
                    format!("; {} already there", summary.already_there)
                } else {
                    String::new()
                },
                if summary.purged.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} deleted long ago and purged by gc (not exported)",
                        summary.purged.len()
                    )
                },
                if summary.failed.is_empty() {
                    String::new()
                } else {
                    format!("; {} failed", summary.failed.len())
                }
            );
        }
        Ok(if summary.failed.is_empty() {
            Exit::Done
        } else {
            Exit::Failed
        }
        .into())
    }
}
