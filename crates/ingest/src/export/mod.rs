//! `mailingest export`: mail back out of the archive, byte for byte, as an
//! mbox file (Takeout's conventions, see [`mbox`]) or one `.eml` file per
//! message under `<dir>/<yyyy>/<mm>/<gmail id>.eml`.
//!
//! Messages are read a page of rows at a time and their bytes streamed from
//! the store, so memory holds one page and one chunk whatever the export's
//! size. The store re-hashes every message as it streams: bytes that are not
//! the `raw_sha256` the row names end the message with an error naming it,
//! and nothing of it is kept (the mbox is cut back to where it began, an
//! `.eml` is written aside and linked into place only once whole). One bad message
//! never stops the export: it is reported and the rest are exported.

mod mbox;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::Datelike;
use futures::StreamExt;
use serde::Serialize;
use store::{BlobStore, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::repo::{ExportFilter, ExportReads, ExportRow, RepoError};

/// Rows read per page.
const PAGE: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One mbox file.
    Mbox,
    /// One `.eml` file per message in a directory tree.
    Eml,
}

/// Why an export could not run at all (per-message failures are in the summary).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{path}: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} already exists: export never overwrites a file (choose another path)")]
    Exists(String),
}

/// One message that could not be exported.
#[derive(Debug, Clone, Serialize)]
pub struct ExportFailure {
    pub mailbox: String,
    pub message: String,
    pub error: String,
}

/// What an export did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    pub exported: u64,
    /// Message bytes written (without mbox separators and headers).
    pub bytes: u64,
    /// `.eml` files already there with the right bytes (a re-run).
    pub already_there: u64,
    /// Messages whose raw bytes `gc --purge-deleted-older-than` removed (mail
    /// Gmail deleted long ago): not exported, and not a failure.
    pub purged: Vec<String>,
    pub failed: Vec<ExportFailure>,
}

fn output(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Output {
        path: path.display().to_string(),
        source,
    }
}

/// Exports what `filter` selects to `out`; `progress` is told the running
/// count of messages done.
pub async fn export(
    repo: &dyn ExportReads,
    store: &BlobStore,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ExportSummary, ExportError> {
    let mut sink = match format {
        ExportFormat::Mbox => Sink::Mbox(MboxFile::create(out).await?),
        ExportFormat::Eml => {
            tokio::fs::create_dir_all(out).await.map_err(output(out))?;
            Sink::Eml(out.to_path_buf())
        }
    };
    let mut summary = ExportSummary::default();
    let names = LabelNames::load(repo, &filter.mailbox_ids).await?;
    let mut after = 0;
    loop {
        let mut rows = repo.export_page(filter, after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in &mut rows {
            names.name(row);
        }
        for row in &rows {
            if row.purged {
                summary.purged.push(row.provider_message_id.clone());
                continue;
            }
            match sink.write(store, row).await {
                Ok(Written::New(bytes)) => {
                    summary.exported += 1;
                    summary.bytes += bytes;
                }
                Ok(Written::AlreadyThere) => summary.already_there += 1,
                Err(Failed::Message(error)) => summary.failed.push(ExportFailure {
                    mailbox: row.mailbox.clone(),
                    message: row.provider_message_id.clone(),
                    error,
                }),
                Err(Failed::Output(e)) => return Err(e),
            }
            progress(summary.exported + summary.already_there + summary.failed.len() as u64);
        }
    }
    if let Sink::Mbox(file) = sink {
        file.finish().await?;
    }
    Ok(summary)
}

/// The labels' names in Gmail, per mailbox address and label id: read once
/// per export (a mailbox has hundreds of labels at most).
struct LabelNames(HashMap<(String, String), String>);

impl LabelNames {
    async fn load(repo: &dyn ExportReads, mailbox_ids: &[i64]) -> Result<LabelNames, RepoError> {
        Ok(LabelNames(
            repo.mailbox_labels(mailbox_ids)
                .await?
                .into_iter()
                .map(|l| ((l.mailbox, l.label.id), l.label.name))
                .collect(),
        ))
    }

    /// Fills `row.label_names`; an id with no stored label is its own name.
    fn name(&self, row: &mut ExportRow) {
        row.label_names = row
            .label_ids
            .iter()
            .map(|id| {
                self.0
                    .get(&(row.mailbox.clone(), id.clone()))
                    .cloned()
                    .unwrap_or_else(|| id.clone())
            })
            .collect();
    }
}

enum Sink {
    Mbox(MboxFile),
    Eml(PathBuf),
}

enum Written {
    New(u64),
    AlreadyThere,
}

/// A message failed (reported, the export goes on) or the output did (the export stops).
enum Failed {
    Message(String),
    Output(ExportError),
}

impl Sink {
    async fn write(&mut self, store: &BlobStore, row: &ExportRow) -> Result<Written, Failed> {
        let sha = Sha256::from_str(&row.raw_sha256).map_err(|_| {
            Failed::Message(format!(
                "stored raw_sha256 {:?} is not a sha256",
                row.raw_sha256
            ))
        })?;
        match self {
            Sink::Mbox(file) => file.append(store, &sha, row).await.map(Written::New),
            Sink::Eml(dir) => write_eml(store, &sha, row, dir).await,
        }
    }
}

/// The mbox file, and where its last whole message ends.
struct MboxFile {
    path: PathBuf,
    /// Written a chunk at a time (no buffer of our own: a failed message is
    /// cut back with `set_len`).
    file: tokio::fs::File,
    whole: u64,
}

impl MboxFile {
    async fn create(path: &Path) -> Result<MboxFile, ExportError> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    ExportError::Exists(path.display().to_string())
                }
                _ => output(path)(e),
            })?;
        Ok(MboxFile {
            path: path.to_path_buf(),
            file,
            whole: 0,
        })
    }

    async fn append(
        &mut self,
        store: &BlobStore,
        sha: &Sha256,
        row: &ExportRow,
    ) -> Result<u64, Failed> {
        match self.write_message(store, sha, row).await {
            Ok(written) => Ok(written),
            // Nothing of a message that was not written whole stays in the
            // file, whether its bytes or the output failed.
            Err(failed) => match (self.cut_back().await, failed) {
                (Err(e), Failed::Message(m)) => Err(Failed::Output(ExportError::Output {
                    path: self.path.display().to_string(),
                    source: std::io::Error::other(format!(
                        "{m}; then cutting the message back failed: {e}"
                    )),
                })),
                (_, failed) => Err(failed),
            },
        }
    }

    /// Truncates the file to its last whole message.
    async fn cut_back(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        self.file.set_len(self.whole).await?;
        self.file
            .seek(std::io::SeekFrom::Start(self.whole))
            .await
            .map(|_| ())
    }

    async fn write_message(
        &mut self,
        store: &BlobStore,
        sha: &Sha256,
        row: &ExportRow,
    ) -> Result<u64, Failed> {
        let path = self.path.clone();
        let io = |e: std::io::Error| Failed::Output(output(&path)(e));
        let mut chunks = store
            .get_stream(sha)
            .await
            .map_err(|e| Failed::Message(e.to_string()))?;
        let mut quoter = mbox::Quoter::new();
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut written = 0u64;
        let mut crlf = None;
        let mut last = 0u8;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| Failed::Message(e.to_string()))?;
            if chunk.is_empty() {
                continue;
            }
            if crlf.is_none() {
                let ending = mbox_line_ending(&chunk);
                crlf = Some(ending);
                self.file
                    .write_all(&mbox::preamble(row, ending))
                    .await
                    .map_err(io)?;
            }
            written += chunk.len() as u64;
            last = chunk[chunk.len() - 1];
            buf.clear();
            quoter.push(&chunk, &mut buf);
            self.file.write_all(&buf).await.map_err(io)?;
        }
        let Some(crlf) = crlf else {
            return Err(Failed::Message("the archived message is empty".into()));
        };
        buf.clear();
        quoter.finish(&mut buf);
        buf.extend_from_slice(mbox::trailer(last == b'\n', crlf));
        self.file.write_all(&buf).await.map_err(io)?;
        self.file.flush().await.map_err(io)?;
        self.whole = self.file.stream_position().await.map_err(io)?;
        Ok(written)
    }

    async fn finish(mut self) -> Result<(), ExportError> {
        self.file.flush().await.map_err(output(&self.path))?;
        self.file.sync_all().await.map_err(output(&self.path))
    }
}

/// Whether the message's first line ends in CRLF (RFC 5322's ending; the default).
fn mbox_line_ending(first: &[u8]) -> bool {
    match first.iter().position(|b| *b == b'\n') {
        Some(0) => false,
        Some(i) => first[i - 1] == b'\r',
        None => true,
    }
}

/// A Gmail id as a file name: only what Gmail ids are made of (hex), so a
/// stored id can never name a path outside the export.
fn safe_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(id)
}

async fn write_eml(
    store: &BlobStore,
    sha: &Sha256,
    row: &ExportRow,
    dir: &Path,
) -> Result<Written, Failed> {
    let id = safe_id(&row.provider_message_id).ok_or_else(|| {
        Failed::Message("the message id is not a Gmail id; not used as a file name".into())
    })?;
    let month = dir
        .join(format!("{:04}", row.internal_date.year()))
        .join(format!("{:02}", row.internal_date.month()));
    let io = |e: std::io::Error| Failed::Output(output(&month)(e));
    tokio::fs::create_dir_all(&month).await.map_err(io)?;
    let path = month.join(format!("{id}.eml"));
    if tokio::fs::try_exists(&path).await.map_err(io)? {
        // A re-run: keep a file with the right bytes, never overwrite another.
        return if file_sha256(&path).await.map_err(io)? == *sha {
            Ok(Written::AlreadyThere)
        } else {
            Err(Failed::Message(format!(
                "{} exists with other bytes; not overwritten",
                path.display()
            )))
        };
    }
    let partial = month.join(format!(".{id}.eml.partial"));
    let result = async {
        let mut file = create_partial(&partial).await.map_err(io)?;
        let mut chunks = store
            .get_stream(sha)
            .await
            .map_err(|e| Failed::Message(e.to_string()))?;
        let mut written = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| Failed::Message(e.to_string()))?;
            written += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        // A link fails where a file appeared meanwhile: never overwritten.
        tokio::fs::hard_link(&partial, &path).await.map_err(io)?;
        tokio::fs::remove_file(&partial).await.map_err(io)?;
        Ok(written)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result.map(Written::New)
}

/// Creates the partial file exclusively: never through a link planted at its
/// name in a shared output directory (`O_CREAT|O_EXCL` does not follow one).
/// A leftover of a killed export is removed first (removing a link removes
/// the link, not its target), then created exclusively again.
async fn create_partial(partial: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    match options.open(partial).await {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            tokio::fs::remove_file(partial).await?;
            options.open(partial).await
        }
        other => other,
    }
}

/// The sha256 of a file, read a chunk at a time.
async fn file_sha256(path: &Path) -> std::io::Result<Sha256> {
    use sha2::Digest;
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Sha256(hasher.finalize().into()))
}
