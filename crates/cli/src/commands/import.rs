//! `mailingest import`: seed a mailbox from Google Takeout mbox files (or a
//! folder of them) instead of fetching every message from Gmail.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ingest::engine::{ImportReport, ImportRequest, MailboxRef, Progress, RunSummary};

use crate::context::{Context, PoolProfile};
use crate::exit::{self, Exit};
use crate::progress::ProgressDisplay;
use crate::{signals, summary};

#[derive(Debug, Args)]
pub struct Import {
    /// The mailbox the files are an archive of (its email address).
    #[arg(long)]
    mailbox: String,
    /// Takeout mbox files, or folders holding them (their `*.mbox` files, in name order).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Import messages labelled SPAM or TRASH too.
    #[arg(long)]
    include_spam_trash: bool,
    /// Keep entries that are no message of the mailbox (an id Gmail's mailbox
    /// does not hold, no usable id, a malformed entry holding bytes) as
    /// orphans: stored, listed by `mailingest orphans`, never collected by gc.
    #[arg(long)]
    keep_unmatched: bool,
    /// Print the run summary and the import's report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl Import {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let files = match expand(&self.files) {
            Ok(f) => f,
            Err(message) => return Ok(exit::usage_error(message)),
        };
        let gmail = ctx.gmail_client(None).await?;
        let engine = ctx.engine(gmail.clone(), PoolProfile::Run).await?;
        let request = ImportRequest {
            mailbox: MailboxRef::address(&self.mailbox),
            files,
            include_spam_trash: self.include_spam_trash,
            keep_unmatched: self.keep_unmatched,
        };
        let progress = Arc::new(Progress::default());
        let cancel = signals::cancel_on_signal();
        let display =
            ProgressDisplay::start(progress.clone(), gmail, request.mailbox.email().to_owned());
        let result = engine.import(request, cancel, &progress).await;
        drop(display);
        let (run, report) = match result {
            Ok(r) => r,
            Err(e) => return summary::engine_error(e).context("import"),
        };
        print(&run, &report, self.json);
        let mut exit = Exit::from(&run);
        // Entries that are not Takeout's (no usable id, no date): exit 3.
        // Mail Gmail no longer has is named, but expected of an older file.
        // Kept as orphans (--keep-unmatched) they still exit 3: keeping the
        // bytes does not make them mail of the mailbox, the file still held
        // entries that are not the archive's own, and a script sees the same
        // verdict on the same file with or without the flag.
        if report.malformed() > 0 {
            exit = exit.max(Exit::Skipped);
        }
        Ok(exit.into())
    }
}

/// Files as given, a folder as its `*.mbox` files; a path that is neither
/// is a usage error naming it.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|x| x.eq_ignore_ascii_case("mbox"))
                })
                .collect();
            if inside.is_empty() {
                return Err(format!("{}: no .mbox file in this folder", path.display()));
            }
            inside.sort();
            out.extend(inside);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    Ok(out)
}

fn print(run: &RunSummary, report: &ImportReport, json: bool) {
    if json {
        match serde_json::to_string(&serde_json::json!({"run": run, "import": report})) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot encode the summary: {e}"),
        }
        return;
    }
    summary::print(run, false);
    for f in &report.files {
        println!(
            "file {} sha256 {}: {} entries, {} already stored, {} spam/trash left out",
            f.path.display(),
            f.sha256,
            f.entries,
            f.already_stored,
            f.out_of_scope
        );
    }
    for s in &report.skipped {
        println!(
            "skipped {} at byte {}{}: {}",
            s.path.display(),
            s.offset,
            s.message_id
                .as_ref()
                .map(|id| format!(" (message {id})"))
                .unwrap_or_default(),
            s.reason
        );
    }
    for k in &report.kept {
        println!(
            "kept {} at byte {}{} as orphan {} ({}): {}",
            k.path.display(),
            k.offset,
            k.message_id
                .as_ref()
                .map(|id| format!(" (message {id})"))
                .unwrap_or_default(),
            k.sha256,
            k.reason,
            k.detail
        );
    }
    for (name, n) in &report.unknown_labels {
        println!(
            "label {name:?} (on {n} messages) is not a label of this mailbox in Gmail: not stored"
        );
    }
}
