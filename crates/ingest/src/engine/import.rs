//! `mailingest import`: seeds a mailbox from Google Takeout or Google Vault
//! mbox files at the cost of one labels.list, instead of 20 quota units a
//! message.
//!
//! One run of kind `import` holds the mailbox's lease. Each file is hashed
//! first (its sha256 names the source in every `message.ingested` event),
//! then streamed one entry at a time (`import::mbox`), read as a Gmail
//! message (`import::takeout`, or `import::vault` against the export's
//! metadata: `ImportFormat`), archived exactly as a fetched message is
//! (`archive_message`: blob before row) and committed in batches through the
//! one committer, fenced. Ids already stored are not archived again, so a
//! re-run after a kill resumes where the last commit left off, and the same
//! file twice inserts nothing (the upserts would change nothing anyway).
//!
//! What the import trusts from the file: the message ids and the bytes.
//! What Gmail holds decides the rest (one listing of the mailbox's ids and
//! one per label, `GmailIds`): mail deleted since is named, not stored; mail
//! now in SPAM or TRASH is left out; thread ids and labels are Gmail's
//! (`import_labels.rs`), also for messages found stored already. The file's
//! label names are only checked against the mailbox's labels (an unknown
//! one is reported).
//!
//! The history cursor: the run takes one before it lists anything, and sets
//! it (only where the mailbox has none) when it ends, every file read. From
//! then on history since that cursor holds every change to
//! what the import stored: a deletion or relabel after the listing reaches
//! the copy through the next sync, as for mail a backfill stored. Mail that
//! came after the file was made and before the import is not in the file:
//! the next backfill fetches it (it lists the window and fetches only ids not
//! stored). The import's threads are stored without a historyId, so that
//! backfill looks at every one of them (labels from history, no threads.get).
//!
//! Entries that are no message of the mailbox (an id Gmail's mailbox does
//! not hold, no usable id, malformed) are skipped and named, or, with
//! `keep_unmatched`, set aside per batch and kept as orphans in the same
//! commit (`engine::orphans`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt, stream};
use gmail::{ListQuery, MessageMeta, RawMessage};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::commit::Batch;
use super::import_labels::{GmailLabels, gmail_hex};
use super::orphans::{KeptEntry, Unmatched};
use super::run::{BodyEnd, Run, RunPlan};
use super::thread_fetch::MessageResult;
use super::{Engine, EngineError, MailboxRef, Progress};
use crate::domain::{LabelUpdate, RunKind, RunSummary};
use crate::import::ImportFormat;
use crate::import::mbox::{MboxEntry, MboxReader};
use crate::import::takeout::{self, TakeoutMessage};
use crate::import::vault::VaultMetadata;
use crate::repo::{CursorUpdate, HistoryCursor};

/// Messages archived at once (store puts and MIME parsing).
const ARCHIVING_IN_FLIGHT: usize = 16;
/// Entries read ahead of the archiver.
const READ_AHEAD: usize = 64;

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub mailbox: MailboxRef,
    /// mbox files, in order: Takeout's, or Vault's where `vault` names them.
    pub files: Vec<PathBuf>,
    /// Those of `files` that are Google Vault mbox files, with their export's
    /// metadata (the others are Takeout's).
    pub vault: HashMap<PathBuf, Arc<VaultMetadata>>,
    /// Import messages labelled SPAM or TRASH too (a backfill leaves them out
    /// unless asked).
    pub include_spam_trash: bool,
    /// Keep entries that are no message of the mailbox as orphans
    /// (`engine::orphans`) instead of skipping them.
    pub keep_unmatched: bool,
}

/// What an import did beyond the run's counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub files: Vec<ImportedFile>,
    /// Entries not imported: each names its file, byte offset and why.
    pub skipped: Vec<SkippedEntry>,
    /// Entries kept as orphans (`--keep-unmatched`), not skipped.
    pub kept: Vec<KeptEntry>,
    /// Label names of the file that Gmail's labels.list does not know, with
    /// how many messages carried each. Kept out of the stored label ids.
    pub unknown_labels: BTreeMap<String, u64>,
    /// Entries imported with something to say (a Vault message its metadata
    /// does not list).
    pub notes: Vec<EntryNote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryNote {
    pub path: PathBuf,
    pub offset: u64,
    pub message_id: String,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportedFile {
    pub path: PathBuf,
    pub sha256: String,
    pub entries: u64,
    /// Messages already stored (by an earlier import or a backfill): left alone.
    pub already_stored: u64,
    /// In SPAM or TRASH in Gmail now: left out, as a backfill leaves them out.
    pub out_of_scope: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedEntry {
    pub path: PathBuf,
    pub offset: u64,
    /// Gmail's id, when the entry had one.
    pub message_id: Option<String>,
    pub reason: String,
    /// A malformed entry (exit 3), rather than one left out by choice.
    pub malformed: bool,
}

impl ImportReport {
    /// Entries that were not the archive's own, kept or not.
    pub fn malformed(&self) -> usize {
        self.skipped.iter().filter(|s| s.malformed).count()
            + self.kept.iter().filter(|k| k.reason.is_malformed()).count()
    }
}

/// One file's import and what it shares with the others.
struct FileImport<'a> {
    path: &'a Path,
    format: ImportFormat,
    sha256: String,
    labels: &'a LabelMap,
    in_gmail: &'a GmailIds,
    report: &'a Mutex<ImportReport>,
    keep_unmatched: bool,
}

/// What Gmail holds now, listed when the import starts: an entry Gmail no
/// longer has (deleted since the file was made) is never stored, one now in
/// SPAM or TRASH is left out as a backfill leaves it out (unless the import
/// includes them), and each message is filed under the thread Gmail has it
/// in, with Gmail's labels.
struct GmailIds {
    /// Every message id, SPAM and TRASH included → its thread id.
    all: IdMap,
    labels: GmailLabels,
    include_spam_trash: bool,
}

impl GmailIds {
    fn out_of_scope(&self, id: &str) -> bool {
        !self.include_spam_trash && (self.labels.has(id, "SPAM") || self.labels.has(id, "TRASH"))
    }
}

/// Message id → thread id, for a whole mailbox's listing, compactly: Gmail's
/// ids are hex numbers of up to 16 digits, so a pair fits 16 bytes in a
/// sorted vector (a million messages: 16 MB) instead of two strings in a
/// hash map. An id that is not such a number, written as Gmail writes it
/// (lowercase, no leading zeros), is kept as it came, so nothing is ever
/// read back differently.
#[derive(Default)]
struct IdMap {
    /// Sorted by message id, each once.
    numeric: Vec<(u64, u64)>,
    other: HashMap<String, String>,
}

impl IdMap {
    fn insert(&mut self, id: String, thread_id: String) {
        match (gmail_hex(&id), gmail_hex(&thread_id)) {
            (Some(id), Some(thread_id)) => self.numeric.push((id, thread_id)),
            _ => {
                self.other.insert(id, thread_id);
            }
        }
    }

    /// Once every page is in: sorted for lookups, trimmed to its length.
    fn seal(mut self) -> Self {
        self.numeric.sort_unstable_by_key(|&(id, _)| id);
        self.numeric.dedup_by_key(|&mut (id, _)| id);
        self.numeric.shrink_to_fit();
        self
    }

    /// An id spelling a number is still in `other` when its thread id is not one.
    fn thread_of(&self, id: &str) -> Option<String> {
        gmail_hex(id)
            .and_then(|n| self.numeric.binary_search_by_key(&n, |&(id, _)| id).ok())
            .map(|i| format!("{:x}", self.numeric[i].1))
            .or_else(|| self.other.get(id).cloned())
    }
}

/// Takeout's label names → the mailbox's label ids.
struct LabelMap(HashMap<String, String>);

impl LabelMap {
    /// By name, case-insensitively (Gmail's names are unique that way); a
    /// label id is taken as itself too, as `mailingest export` writes user
    /// labels by id. A name wins over an id that spells the same.
    fn new(labels: Vec<gmail::Label>) -> Self {
        let mut map = HashMap::new();
        for l in &labels {
            map.insert(l.id.to_lowercase(), l.id.clone());
        }
        for l in labels {
            map.insert(l.name.to_lowercase(), l.id);
        }
        LabelMap(map)
    }

    fn id_of(&self, name: &str) -> Option<String> {
        takeout::system_label(name)
            .map(str::to_owned)
            .or_else(|| self.0.get(&name.to_lowercase()).cloned())
    }
}

impl Engine {
    /// Imports Takeout files into one mailbox: one run, from lease to summary.
    pub async fn import(
        &self,
        request: ImportRequest,
        cancel: CancellationToken,
        progress: &Progress,
    ) -> Result<(RunSummary, ImportReport), EngineError> {
        let email = request.mailbox.email();
        let api_before = self.gmail.mailbox_metrics(email);
        // Every event of a file's messages names the file by its sha256, so
        // each file is read once before its entries are; those reads run
        // while Gmail's ids are listed rather than after.
        // (It stops after the file it is reading once `hashes` is dropped.)
        let (hashed, mut hashes) = mpsc::unbounded_channel();
        hash_files(request.files.clone(), hashed);
        // Taken before anything is listed: every change after it is in
        // history, and everything the import reads of Gmail is newer.
        let cursor = HistoryCursor(self.gmail.profile(email).await?.history_id);
        let plan = RunPlan {
            kind: RunKind::Import,
            mailbox: request.mailbox.clone(),
            window: None,
            start_history_id: Some(cursor),
            include_spam_trash: request.include_spam_trash,
            api_before,
        };
        let report = Mutex::new(ImportReport::default());
        let cancel = &cancel;
        let summary = self
            .run(plan, cancel, |run| {
                let (report, files, vault) = (&report, &request.files, &request.vault);
                let keep_unmatched = request.keep_unmatched;
                let include_spam_trash = request.include_spam_trash;
                async move {
                    // The run listed the labels as it started (labels.list once).
                    let labels = &LabelMap::new(run.listed_labels().unwrap_or_default().to_vec());
                    let (all, gmail_labels) =
                        tokio::try_join!(self.mailbox_ids(&run), self.gmail_labels(&run))?;
                    let in_gmail = &GmailIds {
                        all,
                        labels: gmail_labels,
                        include_spam_trash,
                    };
                    for path in files {
                        if cancel.is_cancelled() {
                            break;
                        }
                        let sha256 = hashes.recv().await.ok_or_else(|| {
                            EngineError::Internal("the hashing task ended early".into())
                        })??;
                        let file = FileImport {
                            path,
                            format: vault
                                .get(path)
                                .map_or(ImportFormat::Takeout, |m| ImportFormat::Vault(m.clone())),
                            sha256,
                            labels,
                            in_gmail,
                            report,
                            keep_unmatched,
                        };
                        self.import_file(&run, file, cancel, progress).await?;
                    }
                    // An interrupted import sets no cursor: the mailbox's
                    // first cursor comes from an import that read all it was
                    // given (its re-run sets it); a backfill without a cursor
                    // reconciles the whole mailbox meanwhile (`vanished.rs`).
                    let cursor = match cancel.is_cancelled() {
                        true => CursorUpdate::Keep,
                        false => CursorUpdate::IfAbsent(cursor),
                    };
                    Ok(BodyEnd {
                        cursor,
                        window: None,
                        history_expired: false,
                    })
                }
            })
            .await?;
        let report = report
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok((summary, report))
    }

    /// `repair --replace-imported ID…`: the imported bytes of these messages
    /// (named by `verify --sample`) are not Gmail's. Each is fetched raw (20
    /// units on the 2026 table) and stored through the one committer, as a
    /// backfill stores it: its row now names Gmail's bytes, and the ledger
    /// records the change (`message.ingested`, outcome `updated`). A run of
    /// kind `import`, as it mends what an import wrote.
    pub async fn replace_imported(
        &self,
        mailbox: MailboxRef,
        ids: Vec<String>,
        cancel: CancellationToken,
    ) -> Result<RunSummary, EngineError> {
        let plan = RunPlan {
            kind: RunKind::Import,
            api_before: self.gmail.mailbox_metrics(mailbox.email()),
            mailbox,
            window: None,
            start_history_id: None,
            include_spam_trash: true,
        };
        let cancel = &cancel;
        self.run(plan, cancel, |run| {
            let ids = &ids;
            async move {
                let results: Vec<Option<MessageResult>> = stream::iter(ids.iter().cloned())
                    .map(|id| {
                        let run = &run;
                        async move {
                            self.fetch_in_scope(run, id, "not found: deleted in Gmail")
                                .await
                        }
                    })
                    .buffer_unordered(ARCHIVING_IN_FLIGHT)
                    .try_collect()
                    .await?;
                let mut batch = Batch::default();
                batch.add_messages(results.into_iter().flatten());
                self.commit(&run, &batch).await?;
                Ok(BodyEnd {
                    cursor: CursorUpdate::Keep,
                    window: None,
                    history_expired: false,
                })
            }
        })
        .await
    }

    /// The mailbox's message ids with their thread ids, SPAM and TRASH
    /// included (messages.list, 5 units per 500 ids).
    async fn mailbox_ids(&self, run: &Run) -> Result<IdMap, EngineError> {
        let query = ListQuery {
            include_spam_trash: true,
            ..ListQuery::default()
        };
        let mut ids = IdMap::default();
        let mut pages = self.gmail.list_messages(run.mailbox(), query);
        while let Some(page) = pages.next().await {
            for m in page?.messages {
                ids.insert(m.id, m.thread_id);
            }
        }
        Ok(ids.seal())
    }

    /// One file: batches of entries read, archived and committed in turn,
    /// the commit of one batch overlapping the reading and archiving of the
    /// next (the two use different resources: the database, and the CPUs and
    /// the store). The commit is the serial step, so it does only the
    /// transaction: the batch's blobs were flushed as it was prepared, and it
    /// runs as a task of its own (`own_task`). A batch's ids count as stored
    /// for the next one while its commit is in flight, so an id twice in the
    /// file is archived once, as it was when batches ran one after the other. A failed commit fails
    /// the run after the batch being prepared beside it is done; that batch's
    /// blobs are then in the store without rows, as after a kill (gc's).
    async fn import_file(
        &self,
        run: &Run,
        file_import: FileImport<'_>,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<(), EngineError> {
        let (tx, rx) = mpsc::channel::<std::io::Result<MboxEntry>>(READ_AHEAD);
        let reader = read_entries(file_import.path.to_owned(), tx);
        let report = file_import.report;
        let mut entries = EntryBatches::new(file_import, rx, self.options.batch_messages.max(1));
        let mut kept: Vec<KeptEntry> = Vec::new();
        let mut committing: Option<PreparedBatch> = None;
        loop {
            let more = !entries.done && !cancel.is_cancelled();
            if !more && committing.is_none() {
                break;
            }
            let to_commit = committing.as_mut().and_then(|c| c.batch.take());
            let in_flight: HashSet<&str> = committing
                .iter()
                .flat_map(|c| c.ids.iter().map(String::as_str))
                .collect();
            let commit = async {
                match to_commit {
                    Some(batch) => {
                        let (engine, run) = (self.clone(), run.clone());
                        own_task("commit", async move { engine.commit(&run, &batch).await })
                            .await
                            .map(drop)
                    }
                    None => Ok(()),
                }
            };
            let prepare = async {
                match more {
                    true => entries
                        .prepare(self, run, &in_flight, progress)
                        .await
                        .map(Some),
                    false => Ok(None),
                }
            };
            let (committed, prepared) = tokio::join!(commit, prepare);
            drop(in_flight);
            committed?;
            if let Some(c) = committing.take() {
                kept.extend(c.kept);
            }
            committing = prepared?;
        }
        drop(entries.rx);
        let garbage = reader
            .await
            .map_err(|e| EngineError::Internal(format!("mbox reader: {e}")))?;
        let EntryBatches {
            file,
            mut skipped,
            notes,
            unknown,
            ..
        } = entries;
        if garbage > 0 {
            skipped.push(SkippedEntry {
                path: file.path.clone(),
                offset: 0,
                message_id: None,
                reason: format!("{garbage} bytes before the first `From ` line are no mbox entry"),
                malformed: true,
            });
        }
        let mut report = report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        report.files.push(file);
        report.skipped.extend(skipped);
        report.kept.extend(kept);
        report.notes.extend(notes);
        for (name, n) in unknown {
            *report.unknown_labels.entry(name).or_default() += n;
        }
        Ok(())
    }
}

/// A batch read and archived, waiting for (or in) its commit.
struct PreparedBatch {
    /// Nothing to write when every entry of the batch was skipped or left
    /// out (or there was none).
    batch: Option<Batch>,
    /// Ids the batch stores or found stored: stored once it is committed.
    ids: Vec<String>,
    /// Orphans the batch keeps, reported once it is committed.
    kept: Vec<KeptEntry>,
}

/// One file's entries, read a batch at a time, and what reading them found.
struct EntryBatches<'a> {
    path: &'a Path,
    format: ImportFormat,
    source: String,
    labels: &'a LabelMap,
    in_gmail: &'a GmailIds,
    keep_unmatched: bool,
    rx: mpsc::Receiver<std::io::Result<MboxEntry>>,
    batch_size: usize,
    /// The reader has no more entries.
    done: bool,
    file: ImportedFile,
    skipped: Vec<SkippedEntry>,
    /// Entries to keep as orphans, per batch (`--keep-unmatched`).
    unmatched: Vec<Unmatched>,
    notes: Vec<EntryNote>,
    unknown: BTreeMap<String, u64>,
}

impl<'a> EntryBatches<'a> {
    fn new(
        file_import: FileImport<'a>,
        rx: mpsc::Receiver<std::io::Result<MboxEntry>>,
        batch_size: usize,
    ) -> Self {
        let FileImport {
            path,
            format,
            sha256,
            labels,
            in_gmail,
            keep_unmatched,
            ..
        } = file_import;
        EntryBatches {
            path,
            source: format.source(&sha256),
            format,
            labels,
            in_gmail,
            keep_unmatched,
            rx,
            batch_size,
            done: false,
            file: ImportedFile {
                path: path.to_owned(),
                sha256,
                entries: 0,
                already_stored: 0,
                out_of_scope: 0,
            },
            skipped: Vec::new(),
            unmatched: Vec::new(),
            notes: Vec::new(),
            unknown: BTreeMap::new(),
        }
    }

    fn skip(
        &self,
        offset: u64,
        message_id: Option<String>,
        reason: String,
        malformed: bool,
    ) -> SkippedEntry {
        SkippedEntry {
            path: self.path.to_owned(),
            offset,
            message_id,
            reason,
            malformed,
        }
    }

    /// The next batch: readable entries, each id once, those not stored yet
    /// (nor in `in_flight`, the batch being committed) archived, blobs first.
    async fn prepare(
        &mut self,
        engine: &Engine,
        run: &Run,
        in_flight: &HashSet<&str>,
        progress: &Progress,
    ) -> Result<PreparedBatch, EngineError> {
        let chunk = self.read_chunk().await?;
        let ids: Vec<String> = chunk.iter().map(|m| m.id.clone()).collect();
        let stored = engine
            .riding_out("read stored message ids", || async {
                Ok(engine
                    .repo
                    .stored_message_ids(run.mailbox_id(), &ids)
                    .await?)
            })
            .await?;
        let mut todo: Vec<RawMessage> = Vec::with_capacity(chunk.len());
        let mut batch = Batch {
            source: Some(self.source.clone()),
            ..Batch::default()
        };
        let mut ids: Vec<String> = Vec::new();
        for m in chunk {
            if stored.contains(&m.id) || in_flight.contains(m.id.as_str()) {
                // Stored by an earlier (killed) import or a backfill: its
                // labels become Gmail's of now too, as a stored message's do
                // in a backfill (the commit writes only a difference).
                self.file.already_stored += 1;
                batch.label_updates.push(LabelUpdate {
                    label_ids: self.in_gmail.labels.of(&m.id),
                    provider_message_id: m.id.clone(),
                    history_id: None,
                });
                ids.push(m.id);
                continue;
            }
            if let Some(raw) = self.in_scope(m) {
                todo.push(raw);
            }
        }
        if todo.is_empty() && self.unmatched.is_empty() && batch.label_updates.is_empty() {
            return Ok(PreparedBatch {
                batch: None,
                ids,
                kept: Vec::new(),
            });
        }
        let results: Vec<MessageResult> = stream::iter(todo)
            .map(|raw| {
                let (engine, run) = (engine.clone(), run.clone());
                own_task(
                    "archive",
                    async move { engine.archive_message(&run, raw).await },
                )
            })
            .buffer_unordered(ARCHIVING_IN_FLIGHT)
            .try_collect()
            .await?;
        Progress::add(&progress.messages_fetched, results.len() as u64);
        ids.extend(results.iter().filter_map(|r| match r {
            MessageResult::Fetched(m, _) => Some(m.meta.id.clone()),
            MessageResult::Skipped { .. } => None,
        }));
        batch.add_messages(results);
        let orphans = std::mem::take(&mut self.unmatched);
        let kept = engine
            .add_orphans(run, &mut batch, self.path, orphans)
            .await?;
        // Flushed here, beside the commit of the batch before, rather than
        // first thing in this batch's own commit: commits run one at a time.
        engine.make_batch_durable(&batch).await?;
        Ok(PreparedBatch {
            batch: Some(batch),
            ids,
            kept,
        })
    }

    /// Up to a batch of readable entries, each id once; sets `done` at the
    /// file's end.
    async fn read_chunk(&mut self) -> Result<Vec<TakeoutMessage>, EngineError> {
        let mut chunk: Vec<TakeoutMessage> = Vec::with_capacity(self.batch_size);
        let mut seen: HashSet<String> = HashSet::new();
        while chunk.len() < self.batch_size {
            let Some(entry) = self.rx.recv().await else {
                self.done = true;
                break;
            };
            let entry = entry.map_err(|e| EngineError::Import {
                path: self.path.to_owned(),
                reason: e.to_string(),
            })?;
            self.file.entries += 1;
            let offset = entry.offset;
            match self.format.read_entry_or_return(entry) {
                Ok(read) if !seen.insert(read.message.id.clone()) => {
                    let s = self.skip(
                        offset,
                        Some(read.message.id),
                        "the same message id again in this batch of the file".into(),
                        false,
                    );
                    self.skipped.push(s);
                }
                Ok(read) => {
                    if let Some(note) = read.note {
                        self.notes.push(EntryNote {
                            path: self.path.to_owned(),
                            offset,
                            message_id: read.message.id.clone(),
                            note,
                        });
                    }
                    chunk.push(read.message)
                }
                Err((e, entry)) => match self
                    .keep_unmatched
                    .then(|| Unmatched::unreadable(&e, entry))
                    .flatten()
                {
                    Some(u) => self.unmatched.push(u),
                    None => {
                        let s = self.skip(offset, None, e.to_string(), true);
                        self.skipped.push(s);
                    }
                },
            }
        }
        Ok(chunk)
    }

    /// A message not stored yet, as Gmail would serve it, when Gmail's
    /// mailbox holds it in the run's scope; otherwise counted, set aside as
    /// an orphan or skipped.
    fn in_scope(&mut self, mut m: TakeoutMessage) -> Option<RawMessage> {
        match self.in_gmail.all.thread_of(&m.id) {
            Some(_) if self.in_gmail.out_of_scope(&m.id) => {
                self.file.out_of_scope += 1;
                return None;
            }
            Some(thread_id) => m.thread_id = thread_id,
            None if self.keep_unmatched => {
                self.unmatched.push(Unmatched::not_in_mailbox(m));
                return None;
            }
            None => {
                let s = self.skip(
                    m.offset,
                    Some(m.id),
                    "not in this mailbox in Gmail (deleted since the archive was \
                     made, or another account's message): not stored"
                        .into(),
                    false,
                );
                self.skipped.push(s);
                return None;
            }
        }
        // The file's label names are only checked: Gmail's labels are stored.
        for name in &m.label_names {
            if self.labels.id_of(name).is_none() {
                *self.unknown.entry(name.clone()).or_default() += 1;
            }
        }
        let label_ids = self.in_gmail.labels.of(&m.id);
        let size = m.raw.len() as u64;
        Some(RawMessage {
            meta: MessageMeta {
                id: m.id,
                thread_id: m.thread_id,
                label_ids,
                internal_date_ms: m.internal_date_ms,
                // Unknown: the file does not say (stored as NULL).
                history_id: 0,
                size_estimate: size,
            },
            raw: m.raw,
        })
    }
}

/// Runs `work` as a task of its own. The commit of one batch and the archiving
/// of the next then run on every worker thread, instead of taking turns in
/// the run's one task: the commit is the import's serial step, and it waited
/// there behind MIME parsing and hashing. Dropping the returned future aborts
/// the task, as dropping `work` itself would have.
async fn own_task<T: Send + 'static>(
    what: &'static str,
    work: impl Future<Output = Result<T, EngineError>> + Send + 'static,
) -> Result<T, EngineError> {
    AbortOnDropHandle::new(tokio::spawn(work))
        .await
        .map_err(|e| EngineError::Internal(format!("{what} task: {e}")))?
}

/// Each file's sha256 in turn into `tx`, read off the async threads; stops
/// once the receiver is gone.
fn hash_files(paths: Vec<PathBuf>, tx: mpsc::UnboundedSender<Result<String, EngineError>>) {
    tokio::task::spawn_blocking(move || {
        for path in paths {
            if tx.send(file_sha256(&path)).is_err() {
                return;
            }
        }
    });
}

fn file_sha256(path: &Path) -> Result<String, EngineError> {
    let fail = |e: std::io::Error| EngineError::Import {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut f = std::fs::File::open(path).map_err(fail)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Streams the file's entries into `tx` from a blocking thread; stops when
/// the receiver is gone. Returns how many bytes came before the first entry.
fn read_entries(
    path: PathBuf,
    tx: mpsc::Sender<std::io::Result<MboxEntry>>,
) -> tokio::task::JoinHandle<u64> {
    tokio::task::spawn_blocking(move || {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return 0;
            }
        };
        let mut reader = MboxReader::new(BufReader::with_capacity(1 << 20, file));
        loop {
            let next = reader.next_entry().transpose();
            let Some(next) = next else {
                return reader.leading_garbage();
            };
            let failed = next.is_err();
            if tx.blocking_send(next).is_err() || failed {
                return reader.leading_garbage();
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gmail's ids are kept as numbers only when the number gives the very
    /// same id back; anything else is kept as it came, and every id is found
    /// under its own spelling only.
    #[test]
    fn id_map_finds_each_id_under_its_own_spelling() {
        let mut ids = IdMap::default();
        ids.insert("18c2f3a4b5d6e7f8".into(), "18c2f3a4b5d6e700".into());
        ids.insert("ffffffffffffffff".into(), "1".into());
        ids.insert("0".into(), "0".into());
        // Not Gmail's spelling of a number: kept as strings.
        ids.insert("0abc".into(), "t-0abc".into());
        ids.insert("ABC".into(), "abc".into());
        ids.insert("10000000000000000".into(), "x".into());
        ids.insert("17".into(), "thread-of-17".into());
        let ids = ids.seal();
        assert_eq!(ids.numeric.len(), 3, "{:?}", ids.numeric);
        assert_eq!(ids.other.len(), 4);
        assert_eq!(
            ids.thread_of("18c2f3a4b5d6e7f8").as_deref(),
            Some("18c2f3a4b5d6e700")
        );
        assert_eq!(ids.thread_of("ffffffffffffffff").as_deref(), Some("1"));
        assert_eq!(ids.thread_of("0").as_deref(), Some("0"));
        assert_eq!(ids.thread_of("0abc").as_deref(), Some("t-0abc"));
        assert_eq!(ids.thread_of("abc"), None, "0abc and ABC are other ids");
        assert_eq!(ids.thread_of("ABC").as_deref(), Some("abc"));
        assert_eq!(ids.thread_of("10000000000000000").as_deref(), Some("x"));
        assert_eq!(ids.thread_of("17").as_deref(), Some("thread-of-17"));
        assert!(ids.thread_of("18").is_none() && ids.thread_of("").is_none());
        assert!(ids.thread_of("00").is_none());
    }
}
