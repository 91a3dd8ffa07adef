//! Fetching one changed thread: which messages are new (from messages.list, or
//! threads.get minimal) → raw fetch, parse (off the async threads), and blobs
//! into the store; and the current labels of its stored messages (from
//! threads.get, or the run's label source, see `label_source.rs`).
//!
//! Blobs are written here, before any row that references them is even built,
//! so a crash leaves at worst an unreferenced blob, never a row pointing at
//! nothing. What comes out is a `ThreadWork`: everything the writer needs to
//! commit the thread in one transaction.
//!
//! Here too a failure that belongs to one message (Gmail refuses it, our
//! parser rejects it, a field is out of range, retries on its id ran out)
//! becomes a [`Skipped`] that the commit quarantines, so one bad message never
//! fails the run; a failure that belongs to the run (credentials, the store,
//! Gmail down for every message) is returned and fails it.

use std::collections::HashSet;

use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use gmail::{GmailError, MessageMeta, RawMessage};
use store::{PendingSync, PutOutcome};
use tracing::{debug, warn};

use super::label_source::LazyLabelSource;
use super::run::{Run, Stage};
use super::{Engine, EngineError, Progress};
use crate::domain::{BlobCounts, BlobUpsert, Coverage, LabelUpdate, SkipKind, Skipped, Window};
use crate::mime::{self, ParsedMessage};
use crate::repo::as_i64;

/// Raw fetches in flight per thread (the client's per-mailbox cap bounds the total).
const MESSAGES_IN_FLIGHT_PER_THREAD: usize = 4;

/// Messages in a row whose retries ran out, with no fetch succeeding between
/// them, after which the run fails instead of quarantining more: that is
/// Gmail (or the way to it) being down, not one bad message.
const UNAVAILABLE_STREAK_LIMIT: u32 = 8;

/// Messages up to this size are parsed on the task's own thread rather than
/// a blocking one (a 16 KiB message parses in tens of microseconds).
const INLINE_PARSE_LIMIT: usize = 16 * 1024;

/// A thread threads.list returned that is not known current for the window.
#[derive(Debug)]
pub(crate) struct ListedThread {
    pub id: String,
    pub snippet: Option<String>,
    /// The thread's historyId as listed.
    pub history_id: u64,
    /// Whether the thread has a row: its stored messages' labels must be
    /// refreshed, from threads.get or from the run's label source.
    pub stored: bool,
    /// The thread's messages in the window, from messages.list: for a thread
    /// without a row, and for a stored one when the run learns labels from its
    /// label source. Those not stored are fetched raw directly, without
    /// threads.get; `None` falls back to threads.get.
    pub window_messages: Option<Vec<String>>,
}

/// One message fetched, parsed and archived, waiting for its rows.
#[derive(Debug)]
pub(crate) struct FetchedMessage {
    pub meta: MessageMeta,
    pub parsed: ParsedMessage,
    pub raw_blob: BlobUpsert,
    /// (part, blob) for every attachment and inline part.
    pub parts: Vec<(mime::ParsedPart, BlobUpsert)>,
}

/// Messages fetched for one commit: stored ones waiting for their rows, and
/// skipped ones waiting to be recorded, with what archiving put in the store.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub messages: Vec<FetchedMessage>,
    pub skipped: Vec<Skipped>,
    /// Blobs archived for messages that were then skipped (unparseable).
    pub orphan_blobs: Vec<BlobUpsert>,
    pub blobs: BlobPuts,
}

impl Fetched {
    /// Takes one message's outcome; returns the id of the message if it is
    /// settled: stored, gone, or refused for good. One whose retries ran out
    /// is not: its thread must not be marked current.
    pub(crate) fn absorb(&mut self, result: MessageResult) -> Option<String> {
        match result {
            MessageResult::Fetched(m, blobs) => {
                self.blobs.merge(blobs);
                let id = m.meta.id.clone();
                self.messages.push(*m);
                Some(id)
            }
            MessageResult::Skipped {
                skipped,
                raw_blob,
                blobs,
            } => {
                self.blobs.merge(blobs);
                self.orphan_blobs.extend(raw_blob);
                let id = skipped.message_id.clone();
                let settled = skipped.kind != SkipKind::Unavailable;
                self.skipped.push(skipped);
                settled.then_some(id)
            }
        }
    }
}

/// A thread ready to be written.
#[derive(Debug)]
pub(crate) struct ThreadWork {
    pub provider_thread_id: String,
    /// The thread historyId to record, or `None` when some of its messages are
    /// not stored (outside the window, excluded, or skipped for a transient
    /// reason): the next run must look at it again.
    pub history_id: Option<u64>,
    /// Which of the thread's messages `history_id` vouches for.
    pub coverage: Coverage,
    pub snippet: Option<String>,
    pub label_updates: Vec<LabelUpdate>,
    pub fetched: Fetched,
}

impl ThreadWork {
    /// A thread with nothing in it yet, not (yet) known to be current.
    pub(crate) fn new(provider_thread_id: String, snippet: Option<String>) -> Self {
        ThreadWork {
            provider_thread_id,
            history_id: None,
            coverage: Coverage::WHOLE,
            snippet,
            label_updates: Vec::new(),
            fetched: Fetched::default(),
        }
    }
}

/// Whether a label set puts a message outside the default backed-up scope.
pub(crate) fn is_spam_or_trash(labels: &[String]) -> bool {
    labels.iter().any(|l| l == "SPAM" || l == "TRASH")
}

impl Engine {
    /// Fetches what is new in one thread. `Ok(None)`: the thread vanished.
    /// `covered` is what a thread complete within `window` is recorded with.
    pub(crate) async fn fetch_thread(
        &self,
        run: &Run,
        mut listed: ListedThread,
        window: Window,
        covered: Coverage,
        labels: &LazyLabelSource,
        progress: &Progress,
    ) -> Result<Option<ThreadWork>, EngineError> {
        if let Some(ids) = listed.window_messages.take() {
            if !listed.stored {
                let work = self
                    .fetch_window(run, listed, ids, HashSet::new(), covered, progress)
                    .await?;
                return Ok(Some(work));
            }
            if self
                .window_labels_suffice(run, &listed, &ids, labels)
                .await?
            {
                let work = self
                    .fetch_relabelled_thread(run, listed, ids, covered, labels, progress)
                    .await?;
                return Ok(Some(work));
            }
            // Stored messages outside the window that a listing cannot speak
            // for: only threads.get refreshes their labels (below).
        }
        let thread_id = listed.id.as_str();
        let minimal = match run
            .timed(
                Stage::Fetch,
                self.gmail.thread_minimal(run.mailbox(), thread_id),
            )
            .await
        {
            Ok(m) => m,
            Err(GmailError::NotFound { .. }) => {
                debug!(thread_id, "thread vanished between list and get");
                return Ok(None);
            }
            Err(e @ GmailError::InvalidId { .. }) => {
                // Not sent: a listing that names such a thread is broken or
                // hostile. Its messages, listed by id, are fetched (and
                // judged) one by one; this thread as a whole is not.
                warn!(error = %e, "thread skipped");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        // Which messages of the thread are stored at all: their labels are
        // kept current whatever the window (a stored message moved to TRASH
        // must show it), and they count as settled.
        let all_ids: Vec<String> = minimal.messages.iter().map(|m| m.id.clone()).collect();
        let stored = if listed.stored {
            self.riding_out("read stored message ids", || async {
                Ok(self
                    .repo
                    .stored_message_ids(run.mailbox_id(), &all_ids)
                    .await?)
            })
            .await?
        } else {
            HashSet::new()
        };
        let label_updates: Vec<LabelUpdate> = minimal
            .messages
            .iter()
            .filter(|m| stored.contains(&m.id))
            .map(|m| LabelUpdate {
                provider_message_id: m.id.clone(),
                label_ids: m.label_ids.clone(),
                // Out of range: the labels still apply, without a historyId.
                history_id: as_i64("historyId", m.history_id).ok(),
            })
            .collect();
        // What this run fetches: new messages inside the window, spam and
        // trash only when asked for.
        let in_scope =
            |m: &MessageMeta| run.include_spam_trash() || !is_spam_or_trash(&m.label_ids);
        let wanted: Vec<&MessageMeta> = minimal
            .messages
            .iter()
            .filter(|m| window.contains_ms(m.internal_date_ms))
            .filter(|m| in_scope(m))
            .collect();
        // A quarantined message is retried by the quarantine alone, with
        // its backoff and bound, and counts as settled here.
        let (held, new): (Vec<&MessageMeta>, Vec<&MessageMeta>) = wanted
            .iter()
            .filter(|m| !stored.contains(&m.id))
            .partition(|m| run.is_quarantined(&m.id));
        let held = held.into_iter().map(|m| m.id.clone());
        let new: Vec<(String, u64)> = new
            .into_iter()
            .map(|m| (m.id.clone(), m.size_estimate))
            .collect();

        let results: Vec<MessageResult> = stream::iter(new)
            .map(|(id, size)| self.fetch_message(run, id, size, progress).boxed())
            .buffer_unordered(MESSAGES_IN_FLIGHT_PER_THREAD)
            .try_collect()
            .await?;

        let mut work = ThreadWork::new(minimal.id.clone(), listed.snippet);
        work.label_updates = label_updates;
        // Gone and refused messages do not make a thread incomplete (the
        // quarantine retries refused ones by id); unavailable ones do.
        let mut settled: HashSet<String> = stored;
        settled.extend(held);
        for result in results {
            settled.extend(work.fetched.absorb(result));
        }
        // Current for the whole thread when every in-scope message is
        // settled; else for the window when every wanted one is.
        if minimal
            .messages
            .iter()
            .all(|m| settled.contains(&m.id) || !in_scope(m))
        {
            work.history_id = Some(minimal.history_id);
            work.coverage = Coverage::WHOLE;
        } else if wanted.iter().all(|m| settled.contains(&m.id)) {
            work.history_id = Some(minimal.history_id);
            work.coverage = covered;
        }
        work.fetched
            .messages
            .sort_by_key(|m| (m.meta.internal_date_ms, m.meta.id.clone()));
        Ok(Some(work))
    }

    /// A stored thread that changed, on a run that learns labels from its
    /// label source: its window messages not stored are fetched as for a new
    /// thread, and its stored messages' labels come from the source, so no
    /// threads.get.
    /// Whether the label source can speak for every stored message of a
    /// changed stored thread: history since the cursor knows the whole
    /// mailbox; a listing per label only the window, so a thread with stored
    /// messages outside it goes through threads.get, or their labels would
    /// stay stale under a historyId that vouches for them.
    async fn window_labels_suffice(
        &self,
        run: &Run,
        listed: &ListedThread,
        window_ids: &[String],
        labels: &LazyLabelSource,
    ) -> Result<bool, EngineError> {
        let source = labels.get(self, run).await?;
        if !source.window_only() {
            return Ok(true);
        }
        let stored = self
            .riding_out("read a thread's stored message ids", || async {
                Ok(self
                    .repo
                    .stored_thread_message_ids(run.mailbox_id(), &listed.id)
                    .await?)
            })
            .await?;
        // The listing names the window's messages in SPAM and TRASH too (it
        // includes them); the window's others are in `window_ids`.
        let named: HashSet<&String> = source.named_in(&listed.id).collect();
        Ok(stored
            .iter()
            .all(|id| window_ids.contains(id) || named.contains(id)))
    }

    async fn fetch_relabelled_thread(
        &self,
        run: &Run,
        listed: ListedThread,
        ids: Vec<String>,
        covered: Coverage,
        labels: &LazyLabelSource,
        progress: &Progress,
    ) -> Result<ThreadWork, EngineError> {
        let source = labels.get(self, run).await?;
        let mut candidates: Vec<String> = ids.clone();
        candidates.extend(
            source
                .named_in(&listed.id)
                .filter(|id| !ids.contains(id))
                .cloned(),
        );
        let stored = self
            .riding_out("read stored labels", || async {
                Ok(self
                    .repo
                    .stored_labels(run.mailbox_id(), &candidates)
                    .await?)
            })
            .await?;
        let label_updates = source.updates(&listed.id, &ids, &stored);
        let stored_ids = stored.into_keys().collect();
        let mut work = self
            .fetch_window(run, listed, ids, stored_ids, covered, progress)
            .await?;
        work.label_updates = label_updates;
        Ok(work)
    }

    /// A thread's window messages, known from messages.list: those not
    /// `stored` are fetched raw (labels come with them), and the thread is
    /// recorded current for the window once every one is settled.
    async fn fetch_window(
        &self,
        run: &Run,
        listed: ListedThread,
        ids: Vec<String>,
        stored: HashSet<String>,
        covered: Coverage,
        progress: &Progress,
    ) -> Result<ThreadWork, EngineError> {
        let (held, new): (Vec<String>, Vec<String>) = ids
            .iter()
            .filter(|id| !stored.contains(*id))
            .cloned()
            .partition(|id| run.is_quarantined(id));
        let results: Vec<(String, Option<MessageResult>)> = stream::iter(new)
            .map(|id| {
                async move {
                    let r = self
                        .fetch_in_scope(
                            run,
                            id.clone(),
                            "not found: deleted between listing and fetch",
                        )
                        .await?;
                    Ok::<_, EngineError>((id, r))
                }
                .boxed()
            })
            .buffer_unordered(MESSAGES_IN_FLIGHT_PER_THREAD)
            .try_collect()
            .await?;
        let mut work = ThreadWork::new(listed.id, listed.snippet);
        let mut settled: HashSet<String> = stored;
        settled.extend(held);
        for (id, result) in results {
            match result {
                // In SPAM or TRASH by now: out of scope, settled.
                None => {
                    settled.insert(id);
                }
                Some(result) => {
                    if let MessageResult::Fetched(m, _) = &result {
                        Progress::add(&progress.messages_fetched, 1);
                        Progress::add(&progress.bytes_fetched, m.raw_blob.size.max(0) as u64);
                    }
                    settled.extend(work.fetched.absorb(result));
                }
            }
        }
        if ids.iter().all(|id| settled.contains(id)) {
            work.history_id = Some(listed.history_id);
            work.coverage = covered;
        }
        work.fetched
            .messages
            .sort_by_key(|m| (m.meta.internal_date_ms, m.meta.id.clone()));
        Ok(work)
    }

    /// Fetches and archives one message of about `size` bytes, within the
    /// engine's memory budget.
    async fn fetch_message(
        &self,
        run: &Run,
        id: String,
        size: u64,
        progress: &Progress,
    ) -> Result<MessageResult, EngineError> {
        let mut memory = self.options.message_memory.reserve(size).await;
        let raw = match self
            .fetch_raw(run, id, "not found: deleted between listing and fetch")
            .await?
        {
            Ok(raw) => raw,
            Err(skipped) => return Ok(MessageResult::skipped(skipped)),
        };
        Progress::add(&progress.messages_fetched, 1);
        Progress::add(&progress.bytes_fetched, raw.raw.len() as u64);
        // sizeEstimate is an estimate: parse within what it really is.
        memory.grow_to(raw.raw.len() as u64);
        self.archive_message(run, raw).await
    }

    /// Fetches one message raw; `Ok(Err(_))` when the failure belongs to this
    /// message alone (gone, refused, or retries on its id exhausted), which
    /// the caller records instead of failing the run. `gone` says when a 404
    /// means it was deleted.
    pub(crate) async fn fetch_raw(
        &self,
        run: &Run,
        id: String,
        gone: &str,
    ) -> Result<Result<RawMessage, Skipped>, EngineError> {
        let err = match run
            .timed(Stage::Fetch, self.gmail.message_raw(run.mailbox(), &id))
            .await
        {
            Ok(raw) => {
                run.note_fetched();
                return Ok(Ok(raw));
            }
            Err(GmailError::NotFound { .. }) => return Ok(Err(Skipped::gone(id, gone))),
            Err(e) => e,
        };
        let kind = match message_failure(&err) {
            None => return Err(err.into()),
            Some(SkipKind::Unavailable) if run.note_unavailable() >= UNAVAILABLE_STREAK_LIMIT => {
                return Err(err.into());
            }
            Some(kind) => kind,
        };
        warn!(message_id = %gmail::printable_id(&id), error = %err, "message quarantined; the run goes on");
        Ok(Err(Skipped {
            message_id: id,
            kind,
            reason: err.to_string(),
            thread_id: None,
            raw_sha256: None,
        }))
    }

    /// Fetches and archives one message by id, as sync and the quarantine's
    /// retries do; `None` when it is out of scope now (in SPAM or TRASH by the
    /// time it is fetched): nothing is stored for it.
    pub(crate) async fn fetch_in_scope(
        &self,
        run: &Run,
        id: String,
        gone: &str,
    ) -> Result<Option<MessageResult>, EngineError> {
        let mut memory = self.options.message_memory.reserve_unknown().await;
        let fetched = self.fetch_raw(run, id, gone).await?;
        if let Ok(raw) = &fetched {
            memory.grow_to(raw.raw.len() as u64);
        }
        match fetched {
            Ok(raw) if !run.include_spam_trash() && is_spam_or_trash(&raw.meta.label_ids) => {
                Ok(None)
            }
            Ok(raw) => self.archive_message(run, raw).await.map(Some),
            Err(skipped) => Ok(Some(MessageResult::skipped(skipped))),
        }
    }

    /// Stores the raw message and its parts, and parses it. A message the
    /// parser rejects is still archived (its raw blob is kept and recorded).
    /// The puts are deferred: the writer makes them durable, all at once,
    /// before the batch that references them commits (`make_blobs_durable`).
    pub(crate) async fn archive_message(
        &self,
        run: &Run,
        raw: RawMessage,
    ) -> Result<MessageResult, EngineError> {
        let mut blobs = BlobPuts::default();
        let RawMessage { meta, raw: bytes } = raw;
        let raw_put = run
            .timed(Stage::Store, self.store.put_deferred(bytes.clone()))
            .await?;
        blobs.add(&raw_put);
        let raw_blob = blob_row(&raw_put);
        let refused = |meta: MessageMeta, reason: String, raw_blob: BlobUpsert, blobs| {
            warn!(message_id = %gmail::printable_id(&meta.id), %reason, "message archived and quarantined");
            MessageResult::Skipped {
                skipped: Skipped {
                    message_id: meta.id,
                    kind: SkipKind::Rejected,
                    reason,
                    thread_id: Some(meta.thread_id),
                    raw_sha256: Some(raw_blob.sha256.clone()),
                },
                raw_blob: Some(raw_blob),
                blobs,
            }
        };
        if let Some(reason) = out_of_range(&meta) {
            return Ok(refused(meta, reason, raw_blob, blobs));
        }
        // A parser panic on hostile input is this message's failure, not the
        // run's (`mime::parse` catches it). A small message is parsed right
        // here: its parse is shorter than the two thread wake-ups a blocking
        // task costs.
        let parsing = async move {
            match bytes.len() <= INLINE_PARSE_LIMIT {
                true => Ok(mime::parse(&bytes)),
                false => tokio::task::spawn_blocking(move || mime::parse(&bytes)).await,
            }
        };
        let parsed = match run.timed(Stage::Parse, parsing).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                let reason = format!("unparseable MIME: {e} (raw archived as {})", raw_put.sha256);
                return Ok(refused(meta, reason, raw_blob, blobs));
            }
            Err(e) if e.is_panic() => {
                let reason = format!(
                    "the MIME parser panicked (raw archived as {})",
                    raw_put.sha256
                );
                return Ok(refused(meta, reason, raw_blob, blobs));
            }
            Err(e) => return Err(EngineError::Internal(format!("parser task failed: {e}"))),
        };
        let mut parts = Vec::with_capacity(parsed.parts.len());
        for part in &parsed.parts {
            let put = run
                .timed(Stage::Store, self.store.put_deferred(part.content.clone()))
                .await?;
            blobs.add(&put);
            parts.push((part.clone(), blob_row(&put)));
        }
        // The bytes live in the store now; keep only metadata in memory.
        let parts = parts
            .into_iter()
            .map(|(mut p, b)| {
                p.content = Bytes::new();
                (p, b)
            })
            .collect();
        let mut parsed = parsed;
        parsed.parts.clear();
        Ok(MessageResult::Fetched(
            Box::new(FetchedMessage {
                meta,
                parsed,
                raw_blob,
                parts,
            }),
            blobs,
        ))
    }
}

pub(crate) enum MessageResult {
    Fetched(Box<FetchedMessage>, BlobPuts),
    Skipped {
        skipped: Skipped,
        raw_blob: Option<BlobUpsert>,
        blobs: BlobPuts,
    },
}

impl MessageResult {
    /// A message skipped before anything of it was archived.
    pub(crate) fn skipped(skipped: Skipped) -> Self {
        MessageResult::Skipped {
            skipped,
            raw_blob: None,
            blobs: BlobPuts::default(),
        }
    }
}

/// Which failures of a messages.get belong to that message alone. Auth,
/// configuration, a 403 (permission or quota) and anything unexpected belong
/// to the run.
fn message_failure(err: &GmailError) -> Option<SkipKind> {
    match err {
        GmailError::RetriesExhausted { .. } => Some(SkipKind::Unavailable),
        GmailError::BadRequest { .. }
        | GmailError::Decode { .. }
        | GmailError::InvalidId { .. } => Some(SkipKind::Rejected),
        GmailError::Api { status, .. } if (400..500).contains(status) && *status != 403 => {
            Some(SkipKind::Rejected)
        }
        _ => None,
    }
}

/// A Gmail field our columns cannot hold: the message is refused, not the batch.
fn out_of_range(meta: &MessageMeta) -> Option<String> {
    // Ids are data: one that could become syntax never reaches a row.
    if !gmail::is_gmail_id(&meta.id) {
        return Some(format!(
            "message id {} is not a Gmail id",
            gmail::printable_id(&meta.id)
        ));
    }
    if !gmail::is_gmail_id(&meta.thread_id) {
        return Some(format!(
            "thread id {} is not a Gmail id",
            gmail::printable_id(&meta.thread_id)
        ));
    }
    if let Some(bad) = meta.label_ids.iter().find(|l| !gmail::is_label_id(l)) {
        return Some(format!(
            "label id {} is not a label id",
            gmail::printable_id(bad)
        ));
    }
    if as_i64("historyId", meta.history_id).is_err() {
        return Some(format!("historyId {} out of range", meta.history_id));
    }
    if chrono::DateTime::from_timestamp_millis(meta.internal_date_ms).is_none() {
        return Some(format!(
            "internalDate {} out of range",
            meta.internal_date_ms
        ));
    }
    None
}

/// What archiving put into the store: the summary's counts, and the latest
/// deferred put, which must be durable before any row points at these blobs.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlobPuts {
    pub counts: BlobCounts,
    pub durable_after: Option<PendingSync>,
    /// Blobs these puts found already stored and did not write: gc may have
    /// removed one since, so the writer looks each up after recording its
    /// rows (`engine::commit`).
    pub found: Vec<store::Sha256>,
    /// Blobs these puts wrote: looked up too (gc's clock may have taken one for old).
    pub created: Vec<store::Sha256>,
}

impl BlobPuts {
    pub(crate) fn add(&mut self, put: &PutOutcome) {
        if put.created {
            self.counts.stored += 1;
            self.created.push(put.sha256);
        } else {
            self.counts.deduplicated += 1;
            self.found.push(put.sha256);
        }
        self.durable_after = self.durable_after.max(put.pending);
    }

    pub(crate) fn merge(&mut self, other: BlobPuts) {
        self.counts.stored += other.counts.stored;
        self.counts.deduplicated += other.counts.deduplicated;
        self.durable_after = self.durable_after.max(other.durable_after);
        self.found.extend(other.found);
        self.created.extend(other.created);
    }
}

pub(crate) fn blob_row(put: &PutOutcome) -> BlobUpsert {
    BlobUpsert {
        sha256: put.sha256.to_string(),
        size: i64::try_from(put.size).unwrap_or(i64::MAX),
        storage_key: put.key.clone(),
    }
}
