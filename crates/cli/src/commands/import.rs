//! `mailingest import`: seed a mailbox from Google Takeout mbox files, Google
//! Vault mbox files with their export's metadata, or folders of them, instead
//! of fetching every message from Gmail.
//!
//! Which archive a file is: a Vault mbox is one read against a metadata file,
//! named (`--vault-metadata`, or an `.xml` among the files) or found beside it
//! as Vault names it (`<export>-metadata.xml` in the mbox's folder); any other
//! mbox is Takeout's. The metadata is read whole before the run starts, so a
//! file that is not Vault's XML is a usage error (exit 2) that names it and
//! where it stops parsing, and no run is recorded for it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ingest::engine::{ImportReport, ImportRequest, MailboxRef, Progress, RunSummary};
use ingest::import::vault::VaultMetadata;

use crate::context::{Context, PoolProfile};
use crate::exit::{self, Exit};
use crate::progress::ProgressDisplay;
use crate::{signals, summary};

#[derive(Debug, Args)]
pub struct Import {
    /// The mailbox the files are an archive of (its email address).
    #[arg(long)]
    mailbox: String,
    /// Takeout or Vault mbox files, or folders holding them (their `*.mbox` files, in name
    /// order, read against the folder's `*-metadata.xml` if it has one: a Vault export).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A Google Vault export's metadata file (`<export>-metadata.xml`): every mbox named is
    /// read as Vault's, against it. May be given more than once (merged).
    #[arg(long, value_name = "FILE")]
    vault_metadata: Vec<PathBuf>,
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
        let (files, vault) = match expand(&self.files, &self.vault_metadata) {
            Ok(f) => f,
            Err(message) => return Ok(exit::usage_error(message)),
        };
        let vault = match tokio::task::spawn_blocking(move || read_metadata(vault)).await? {
            Ok(v) => v,
            Err(message) => return Ok(exit::usage_error(message)),
        };
        let gmail = ctx.gmail_client(None).await?;
        let engine = ctx.engine(gmail.clone(), PoolProfile::Run).await?;
        let request = ImportRequest {
            mailbox: MailboxRef::address(&self.mailbox),
            files,
            vault,
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

/// Each mbox file to import, in order, and for each Vault one the metadata
/// files it is read against.
type Expanded = (Vec<PathBuf>, HashMap<PathBuf, BTreeSet<PathBuf>>);

/// Files as given, a folder as its `*.mbox` files; a path that is neither
/// is a usage error naming it. Metadata files named (`--vault-metadata`, or
/// an `.xml` among the files) apply to every mbox; otherwise an mbox whose
/// folder holds Vault's `*-metadata.xml` is read against those.
fn expand(paths: &[PathBuf], metadata: &[PathBuf]) -> Result<Expanded, String> {
    let mut named: BTreeSet<PathBuf> = BTreeSet::new();
    for m in metadata {
        if !m.is_file() {
            return Err(format!("{}: no such file", m.display()));
        }
        named.insert(m.clone());
    }
    let mut out = Vec::new();
    for path in paths {
        if path.is_file() && has_extension(path, "xml") {
            named.insert(path.clone());
        } else if path.is_dir() {
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
    if out.is_empty() {
        return Err("no mbox file to import (only metadata files named)".into());
    }
    let mut vault = HashMap::new();
    for mbox in &out {
        let metadata = match named.is_empty() {
            false => named.clone(),
            true if takeout_separator(mbox) => BTreeSet::new(),
            true => beside(mbox)?,
        };
        if !metadata.is_empty() {
            vault.insert(mbox.clone(), metadata);
        }
    }
    Ok((out, vault))
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|x| x.eq_ignore_ascii_case(ext))
}

/// Whether the file starts as Takeout's mbox does (`From <decimal id>@xxx`;
/// Vault's separator names `<decimal id>-<uuid>.mbox@xxx`): a Takeout file
/// in a folder that also holds a Vault export stays Takeout's.
fn takeout_separator(mbox: &Path) -> bool {
    use std::io::{BufRead as _, Read as _};
    let Ok(file) = std::fs::File::open(mbox) else {
        return false;
    };
    let mut line = Vec::new();
    let mut reader = std::io::BufReader::new(file).take(4096);
    if reader.read_until(b'\n', &mut line).is_err() {
        return false;
    }
    let Some(sender) = line
        .strip_prefix(b"From ")
        .and_then(|rest| rest.split(|b| *b == b' ').next())
    else {
        return false;
    };
    sender
        .strip_suffix(b"@xxx")
        .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_digit))
}

/// Vault's metadata files in the mbox's folder (`<export>-metadata.xml`).
fn beside(mbox: &Path) -> Result<BTreeSet<PathBuf>, String> {
    let folder = match mbox.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let entries = std::fs::read_dir(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    Ok(entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.to_ascii_lowercase().ends_with("-metadata.xml"))
        })
        .collect())
}

/// Each distinct set of metadata files read once (one export's mbox files
/// share theirs); a file that is not Vault's XML names itself and where.
fn read_metadata(
    vault: HashMap<PathBuf, BTreeSet<PathBuf>>,
) -> Result<HashMap<PathBuf, Arc<VaultMetadata>>, String> {
    let mut read: HashMap<BTreeSet<PathBuf>, Arc<VaultMetadata>> = HashMap::new();
    let mut out = HashMap::new();
    for (mbox, files) in vault {
        if let Some(m) = read.get(&files) {
            out.insert(mbox, m.clone());
            continue;
        }
        let mut metadata = VaultMetadata::default();
        for path in &files {
            let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            metadata
                .read_into(std::io::BufReader::with_capacity(1 << 20, file))
                .map_err(|e| format!("{}: not Google Vault's metadata XML, {e}", path.display()))?;
        }
        let metadata = Arc::new(metadata);
        read.insert(files, metadata.clone());
        out.insert(mbox, metadata);
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
    for n in &report.notes {
        println!(
            "note {} at byte {} (message {}): {}",
            n.path.display(),
            n.offset,
            n.message_id,
            n.note
        );
    }
    for (name, n) in &report.unknown_labels {
        println!(
            "label {name:?} (on {n} messages) is not a label of this mailbox in Gmail: not stored"
        );
    }
}
