//! The one place a batch is committed, for backfill and sync alike.
//!
//! A [`Batch`] holds whole threads (so a thread's historyId is committed
//! together with the last of its messages, and a crash can never leave a
//! thread marked current while some of its messages are missing), plus what
//! an incremental sync applies beside new mail (labels, deletions, skips
//! without a thread) and the cursor it reached. [`Engine::commit`] makes the
//! batch's blobs durable, then writes rows, ledger events, the run's counts
//! and the cursor in one transaction that first proves the run still holds its
//! mailbox: the ledger never claims what the tables lack, and vice versa.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{TimeZone, Utc};
use ledger::{EventType, NewEvent, Subject};
use serde_json::json;
use store::BlobStore;
use tracing::{debug, warn};

use super::run::{Run, Stage};
use super::summary::run_counts;
use super::thread_fetch::{BlobPuts, Fetched, MessageResult, ThreadWork};
use super::{Engine, EngineError};
use crate::domain::{
    AttachmentUpsert, BlobUpsert, LabelUpdate, MessageFailure, MessageUpsert, OrphanUpsert,
    Outcome, SkipKind, Skipped, Tally, ThreadUpsert,
};
use crate::repo::{HistoryCursor, RepoTx, as_i64, strip_nul};

/// What one transaction writes.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub threads: Vec<ThreadWork>,
    /// Skipped messages fetched by id rather than with their thread's work
    /// (a sync page's, a quarantine retry's), with the blobs archived for them.
    pub threadless_skips: Fetched,
    /// Label sets of stored messages, in history order (the last one wins).
    pub label_updates: Vec<LabelUpdate>,
    /// Messages Gmail deleted: soft-deleted here.
    pub deletes: Vec<String>,
    /// Quarantined messages that left the backed-up scope: released.
    pub released: Vec<String>,
    /// Where the mailbox's cursor moves with this batch (forward only).
    pub cursor: Option<HistoryCursor>,
    /// History pages and records this batch applies (sync).
    pub history_pages: u64,
    pub history_records: u64,
    /// Where the batch's messages came from when not from Gmail
    /// (`takeout:<file sha256>`), recorded in each `message.ingested`.
    pub source: Option<String>,
    /// Archive entries kept as orphans (`import --keep-unmatched`); their
    /// blobs ride with `threadless_skips` (`engine::orphans`), so they are
    /// made durable, recorded and looked up like every other blob.
    pub orphans: Vec<OrphanUpsert>,
}

impl Batch {
    /// Adds messages fetched by id (sync, quarantine retries): stored ones
    /// grouped by thread as a backfill writes them, skips in `threadless_skips`. Such a
    /// thread is not known current: the next backfill re-examines it.
    pub(crate) fn add_messages(&mut self, results: impl IntoIterator<Item = MessageResult>) {
        let mut threads: BTreeMap<String, ThreadWork> = BTreeMap::new();
        for result in results {
            match &result {
                MessageResult::Fetched(m, _) => threads
                    .entry(m.meta.thread_id.clone())
                    .or_insert_with_key(|id| ThreadWork::new(id.clone(), None))
                    .fetched
                    .absorb(result),
                MessageResult::Skipped { .. } => self.threadless_skips.absorb(result),
            };
        }
        self.threads.extend(threads.into_values());
    }

    /// Every set of fetched messages in the batch, threads' and threadless skips.
    fn fetched(&self) -> impl Iterator<Item = &Fetched> {
        self.threads
            .iter()
            .map(|t| &t.fetched)
            .chain([&self.threadless_skips])
    }
}

impl Engine {
    /// Commits one batch for `run`; returns its counts (also merged into the
    /// run's). A database outage is ridden out by replaying the transaction.
    pub(crate) async fn commit(&self, run: &Run, batch: &Batch) -> Result<Tally, EngineError> {
        self.riding_out("commit batch", || self.commit_once(run, batch))
            .await
    }

    async fn commit_once(&self, run: &Run, batch: &Batch) -> Result<Tally, EngineError> {
        // Blobs before rows, flushed once for the whole batch, before the
        // transaction opens so no transaction waits on the disk.
        run.timed(Stage::Store, self.make_batch_durable(batch))
            .await?;
        for (what, puts) in batch
            .threads
            .iter()
            .map(|t| (format!("thread {}", t.provider_thread_id), &t.fetched.blobs))
            .chain([("skipped messages".to_owned(), &batch.threadless_skips.blobs)])
        {
            check_blobs_durable(&self.store, puts, &what)?;
        }
        let started = std::time::Instant::now();
        let written = run.timed(Stage::Write, self.write_batch(run, batch)).await;
        if let (Ok(_), Some(m)) = (&written, &self.options.metrics) {
            m.observe_commit(started.elapsed());
        }
        written
    }

    /// The batch's blobs durable ([`make_blobs_durable`]): done by the commit,
    /// or earlier by whoever wants the flush off the commit's path.
    pub(crate) async fn make_batch_durable(&self, batch: &Batch) -> Result<(), EngineError> {
        make_blobs_durable(&self.store, batch.fetched().map(|f| &f.blobs)).await
    }

    async fn write_batch(&self, run: &Run, batch: &Batch) -> Result<Tally, EngineError> {
        let mut tx = self.repo.begin(run.fence()).await?;
        let mut writer = BatchWriter {
            tx: tx.as_mut(),
            store: &self.store,
            mailbox_id: run.mailbox_id(),
            events: Vec::new(),
            tally: Tally::default(),
            refused_labels: Vec::new(),
        };
        writer.record_blobs(batch).await?;
        let thread_ids = writer.upsert_threads(batch).await?;
        let messages = writer.upsert_messages(batch, &thread_ids).await?;
        writer.upsert_attachments(batch, &messages).await?;
        let relabelled = writer.apply_labels(batch).await?;
        let deleted = writer.apply_deletes(batch).await?;
        let mut touched: Vec<i64> = thread_ids.values().copied().collect();
        touched.extend(writer.tx.thread_ids_of_messages(&relabelled).await?);
        touched.extend(writer.tx.thread_ids_of_messages(&deleted).await?);
        writer.tx.refresh_threads(&touched).await?;
        writer.record_skips(batch, &messages).await?;
        writer.keep_orphans(batch).await?;
        let mut tally = writer.finish().await?;
        tally.history_pages = batch.history_pages;
        tally.history_records = batch.history_records;

        if let Some(cursor) = batch.cursor {
            tx.advance_cursor(cursor).await?;
        }
        let mut so_far = run.counted();
        so_far.merge(tally.clone());
        tx.record_run_counts(&run_counts(&so_far)?).await?;
        tx.commit().await?;
        run.count(|t| t.merge(tally.clone()));
        debug!(threads = batch.threads.len(), "batch committed");
        Ok(tally)
    }
}

/// Makes every blob the batch archived durable: one store sync covers the
/// deferred puts of all its messages. No sync when they all are already
/// (an import syncs each batch as it prepares it, beside the commit before).
pub(crate) async fn make_blobs_durable<'a>(
    store: &BlobStore,
    puts: impl IntoIterator<Item = &'a BlobPuts>,
) -> Result<(), EngineError> {
    let owed = |p: &BlobPuts| p.durable_after.is_some_and(|t| !store.is_durable(t));
    if puts.into_iter().any(owed) {
        store.sync().await?;
    }
    Ok(())
}

/// Refuses to write rows for blobs the store has not made durable: a crash
/// of the machine could otherwise leave a row pointing at nothing.
pub(crate) fn check_blobs_durable(
    store: &BlobStore,
    puts: &BlobPuts,
    what: &str,
) -> Result<(), EngineError> {
    match puts.durable_after {
        Some(ticket) if !store.is_durable(ticket) => Err(EngineError::Internal(format!(
            "{what}: its blobs are not yet durable in the store; rows must not be written \
             before make_blobs_durable"
        ))),
        _ => Ok(()),
    }
}

/// The steps of one batch inside its transaction, in the order foreign keys need.
struct BatchWriter<'a> {
    tx: &'a mut dyn RepoTx,
    store: &'a BlobStore,
    mailbox_id: i64,
    events: Vec<NewEvent>,
    tally: Tally,
    /// Label updates refused because an id in them is not data: recorded as
    /// skips (quarantined) instead of applied.
    refused_labels: Vec<Skipped>,
}

impl BatchWriter<'_> {
    /// Blob rows: the objects are already in the store, durably.
    async fn record_blobs(&mut self, batch: &Batch) -> Result<(), EngineError> {
        let mut rows: Vec<BlobUpsert> = Vec::new();
        for fetched in batch.fetched() {
            self.tally.blobs.stored += fetched.blobs.counts.stored;
            self.tally.blobs.deduplicated += fetched.blobs.counts.deduplicated;
            rows.extend(fetched.orphan_blobs.iter().cloned());
            for m in &fetched.messages {
                rows.push(m.raw_blob.clone());
                rows.extend(m.parts.iter().map(|(_, b)| b.clone()));
            }
        }
        self.tx.upsert_blobs(&rows).await?;
        self.check_blobs_still_stored(batch).await
    }

    /// `mailingest gc` removes only objects no row records (or that only
    /// long-deleted mail holds), once older than its grace period; but "older"
    /// is the object's time against gc's clock, and clocks disagree (a store
    /// or host whose clock is off, a host that was suspended, a back-dated
    /// grace): gc may take an object a put of this batch wrote, or found, just
    /// before the batch records it. So no clock is trusted here: once this
    /// transaction has recorded the rows (inserted, or locked: see the
    /// backends' `upsert_blobs`), no gc can start on them, and one that
    /// claimed them before is over; one look at the store, now, then settles
    /// every blob of the batch, written or found, whatever its row said. That
    /// is one HEAD (fs: one stat) per distinct blob per batch (fs: all in
    /// one blocking task; S3: 16 at a time).
    async fn check_blobs_still_stored(&mut self, batch: &Batch) -> Result<(), EngineError> {
        let mut look: Vec<store::Sha256> = batch
            .fetched()
            .flat_map(|f| f.blobs.found.iter().chain(&f.blobs.created))
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        look.sort_unstable();
        // All at once: on SQLite this transaction holds the one write lock.
        let sizes = self.store.heads(&look).await?;
        if let Some((sha, _)) = look.iter().zip(sizes).find(|(_, size)| size.is_none()) {
            return Err(EngineError::BlobCollected {
                sha256: sha.to_string(),
            });
        }
        Ok(())
    }

    /// Thread rows; returns each provider thread id's row id.
    async fn upsert_threads(&mut self, batch: &Batch) -> Result<HashMap<String, i64>, EngineError> {
        let rows: Vec<ThreadUpsert> = batch
            .threads
            .iter()
            .map(|w| {
                Ok(ThreadUpsert {
                    mailbox_id: self.mailbox_id,
                    provider_thread_id: w.provider_thread_id.clone(),
                    // Out of range: recorded as not known current (the
                    // thread is looked at again), never a failed batch.
                    history_id: w.history_id.and_then(|h| as_i64("historyId", h).ok()),
                    coverage: w.coverage,
                    snippet: w.snippet.clone(),
                })
            })
            .collect::<Result<_, EngineError>>()?;
        let results = self.tx.upsert_threads(&rows).await?;
        let mut ids = HashMap::with_capacity(rows.len());
        for (row, result) in rows.into_iter().zip(&results) {
            self.tally.threads.record(result.outcome);
            if result.outcome != Outcome::Unchanged {
                self.events.push(event(
                    EventType::ThreadIngested,
                    Subject::Thread(row.provider_thread_id.clone()),
                    json!({
                        "outcome": result.outcome,
                        "history_id": row.history_id.map(|h| h.to_string()),
                    }),
                ));
            }
            ids.insert(row.provider_thread_id, result.id);
        }
        Ok(ids)
    }

    /// Message rows of every thread's new messages; returns (row, row id) in batch order.
    async fn upsert_messages(
        &mut self,
        batch: &Batch,
        thread_ids: &HashMap<String, i64>,
    ) -> Result<Vec<(MessageUpsert, i64)>, EngineError> {
        let mut rows = Vec::new();
        for work in &batch.threads {
            let thread_id = thread_ids[work.provider_thread_id.as_str()];
            for m in &work.fetched.messages {
                rows.push(message_row(self.mailbox_id, thread_id, m)?);
            }
        }
        let results = self.tx.upsert_messages(&rows).await?;
        let parts = batch
            .threads
            .iter()
            .flat_map(|w| w.fetched.messages.iter().map(|m| m.parts.len()));
        let mut stored = Vec::with_capacity(rows.len());
        for ((row, result), attachments) in rows.into_iter().zip(&results).zip(parts) {
            self.tally.messages.record(result.outcome);
            if result.outcome != Outcome::Unchanged {
                let mut payload = json!({
                    "outcome": result.outcome,
                    "thread_id": row.provider_thread_id,
                    "raw_sha256": row.raw_sha256,
                    "raw_size": row.raw_size,
                    "history_id": row.history_id.map(|h| h.to_string()),
                    "attachments": attachments,
                    // The labels it was stored with: a replay of the
                    // ledger (show --as-of) knows each message's labels.
                    "label_ids": row.label_ids,
                });
                if let (Some(source), Some(p)) = (&batch.source, payload.as_object_mut()) {
                    p.insert("source".into(), source.clone().into());
                }
                self.events.push(event(
                    EventType::MessageIngested,
                    Subject::Message(row.provider_message_id.clone()),
                    payload,
                ));
            }
            stored.push((row, result.id));
        }
        self.tally.messages_fetched += stored.len() as u64;
        self.tally.threads_fetched += batch.threads.len() as u64;
        Ok(stored)
    }

    /// Attachment rows, keyed by (message row, MIME part path).
    async fn upsert_attachments(
        &mut self,
        batch: &Batch,
        messages: &[(MessageUpsert, i64)],
    ) -> Result<(), EngineError> {
        let fetched = batch.threads.iter().flat_map(|w| w.fetched.messages.iter());
        let mut rows = Vec::new();
        let mut owners = Vec::new();
        for (m, (row, message_id)) in fetched.zip(messages) {
            for (part, blob) in &m.parts {
                rows.push(AttachmentUpsert {
                    message_id: *message_id,
                    part_id: part.part_id.to_string(),
                    filename: part.filename.clone(),
                    mime_type: part.mime_type.clone(),
                    content_id: part.content_id.clone(),
                    disposition: part.disposition.clone(),
                    size: blob.size,
                    sha256: blob.sha256.clone(),
                });
                owners.push(row.provider_message_id.as_str());
            }
        }
        let results = self.tx.upsert_attachments(&rows).await?;
        for ((row, owner), result) in rows.iter().zip(owners).zip(&results) {
            self.tally.attachments.record(result.outcome);
            if result.outcome != Outcome::Unchanged {
                self.events.push(event(
                    EventType::AttachmentSaved,
                    Subject::Part {
                        message: owner.to_owned(),
                        part: row.part_id.clone(),
                    },
                    json!({
                        "outcome": result.outcome,
                        "sha256": row.sha256,
                        "size": row.size,
                        "mime_type": row.mime_type,
                    }),
                ));
            }
        }
        Ok(())
    }

    /// Labels of messages already stored; returns the ids whose labels changed.
    async fn apply_labels(&mut self, batch: &Batch) -> Result<Vec<String>, EngineError> {
        let updates: Vec<LabelUpdate> = batch
            .threads
            .iter()
            .flat_map(|w| w.label_updates.iter().cloned())
            .chain(batch.label_updates.iter().cloned())
            .collect();
        let (updates, refused): (Vec<LabelUpdate>, Vec<LabelUpdate>) =
            updates.into_iter().partition(label_update_is_data);
        self.refused_labels = refused.iter().map(refused_label_update).collect();
        let changed = self.tx.update_labels(&updates).await?;
        let by_id: HashMap<&str, &LabelUpdate> = updates
            .iter()
            .map(|u| (u.provider_message_id.as_str(), u))
            .collect();
        self.tally.messages.updated += changed.len() as u64;
        self.tally.messages.unchanged += (by_id.len() - changed.len()) as u64;
        self.tally.labels_changed += changed.len() as u64;
        for id in &changed {
            self.events.push(event(
                EventType::LabelsChanged,
                Subject::Message(id.clone()),
                json!({"label_ids": by_id.get(id.as_str()).map(|u| u.label_ids.clone())}),
            ));
        }
        Ok(changed)
    }

    /// Deletions: soft, the row and its blobs stay. Returns the ids deleted now.
    async fn apply_deletes(&mut self, batch: &Batch) -> Result<Vec<String>, EngineError> {
        let deleted = self
            .tx
            .soft_delete_messages(&batch.deletes, Utc::now())
            .await?;
        self.tally.messages_deleted += deleted.len() as u64;
        for id in &deleted {
            self.events.push(event(
                EventType::MessageDeleted,
                Subject::Message(id.clone()),
                json!({}),
            ));
        }
        Ok(deleted)
    }

    /// Skipped messages are recorded, not lost: each in the ledger, and the
    /// quarantined ones in the quarantine. Messages stored, gone or out of
    /// scope now leave the quarantine.
    async fn record_skips(
        &mut self,
        batch: &Batch,
        stored: &[(MessageUpsert, i64)],
    ) -> Result<(), EngineError> {
        let mut failures = Vec::new();
        let mut released: Vec<String> = stored
            .iter()
            .map(|(row, _)| row.provider_message_id.clone())
            .chain(batch.released.iter().cloned())
            .collect();
        let by_thread = batch
            .threads
            .iter()
            .map(|w| (Some(w.provider_thread_id.as_str()), &w.fetched))
            .chain([(None, &batch.threadless_skips)]);
        let refused = std::mem::take(&mut self.refused_labels);
        let by_thread = by_thread.map(|(thread, fetched)| (thread, fetched.skipped.as_slice()));
        for (work_thread, skipped) in by_thread.chain([(None, refused.as_slice())]) {
            for s in skipped {
                let thread_id = s.thread_id.as_deref().or(work_thread);
                self.events.push(event(
                    EventType::MessageSkipped,
                    Subject::Message(s.message_id.clone()),
                    json!({
                        "reason": s.reason,
                        "kind": s.kind,
                        "thread_id": thread_id,
                        "raw_sha256": s.raw_sha256,
                    }),
                ));
                match s.kind.failure() {
                    Some(kind) => failures.push(MessageFailure {
                        provider_message_id: s.message_id.clone(),
                        provider_thread_id: thread_id.map(str::to_owned),
                        kind,
                        reason: s.reason.clone(),
                        raw_sha256: s.raw_sha256.clone(),
                    }),
                    None => released.push(s.message_id.clone()),
                }
                self.tally.skipped.push(s.clone());
            }
        }
        self.tx.release_quarantined(&released).await?;
        self.tx.record_failures(&failures).await?;
        Ok(())
    }

    /// Orphan rows, after their blobs' (`record_blobs`): one `orphan.kept`
    /// event for each the mailbox did not keep yet.
    async fn keep_orphans(&mut self, batch: &Batch) -> Result<(), EngineError> {
        let inserted = self.tx.keep_orphans(&batch.orphans).await?;
        for (row, inserted) in batch.orphans.iter().zip(inserted) {
            if !inserted {
                self.tally.orphans.unchanged += 1;
                continue;
            }
            self.tally.orphans.inserted += 1;
            self.events.push(event(
                EventType::OrphanKept,
                Subject::Blob(row.sha256.clone()),
                json!({
                    "source": row.source,
                    "file_offset": row.file_offset,
                    "size": row.size,
                    "message_id": row.provider_message_id,
                    "reason": row.reason,
                }),
            ));
        }
        Ok(())
    }

    /// Appends the batch's events; returns its counts.
    async fn finish(self) -> Result<Tally, EngineError> {
        self.tx.append_events(&self.events).await?;
        Ok(self.tally)
    }
}

/// A ledger event whose payload carries mail's own text (MIME types, reasons):
/// NUL is dropped from it, as from the columns, since jsonb cannot hold it and
/// one such message must not fail the batch. The raw bytes stay in the store.
/// Whether every id of a label update is data (see [`gmail::is_gmail_id`]):
/// a hostile label id must never reach a row, and from there an export header.
fn label_update_is_data(update: &LabelUpdate) -> bool {
    gmail::is_gmail_id(&update.provider_message_id)
        && update.label_ids.iter().all(|l| gmail::is_label_id(l))
}

/// The skip that stands for a refused label update: the message is
/// quarantined, and its retry fetches it whole (and refuses it again while
/// Gmail still serves the bad id).
fn refused_label_update(update: &LabelUpdate) -> Skipped {
    let bad: Vec<String> = update
        .label_ids
        .iter()
        .filter(|l| !gmail::is_label_id(l))
        .map(|l| gmail::printable_id(l).into_owned())
        .collect();
    let reason = if bad.is_empty() {
        format!(
            "message id {} is not a Gmail id",
            gmail::printable_id(&update.provider_message_id)
        )
    } else {
        format!("label id {} is not a label id", bad.join(", "))
    };
    warn!(message_id = %gmail::printable_id(&update.provider_message_id), %reason, "label change refused; message quarantined");
    Skipped {
        message_id: update.provider_message_id.clone(),
        kind: SkipKind::Rejected,
        reason,
        thread_id: None,
        raw_sha256: None,
    }
}

fn event(event_type: EventType, subject: Subject, mut payload: serde_json::Value) -> NewEvent {
    strip_nul(&mut payload);
    NewEvent::new(event_type, subject, payload)
}

/// The message row of one fetched message.
fn message_row(
    mailbox_id: i64,
    thread_id: i64,
    m: &super::thread_fetch::FetchedMessage,
) -> Result<MessageUpsert, EngineError> {
    let p = &m.parsed;
    Ok(MessageUpsert {
        mailbox_id,
        thread_id,
        provider_message_id: m.meta.id.clone(),
        provider_thread_id: m.meta.thread_id.clone(),
        rfc822_message_id: p.rfc822_message_id.clone(),
        in_reply_to: p.in_reply_to.clone(),
        references: p.references.clone(),
        subject: p.subject.clone(),
        from_addrs: p.from.clone(),
        to_addrs: p.to.clone(),
        cc_addrs: p.cc.clone(),
        bcc_addrs: p.bcc.clone(),
        reply_to_addrs: p.reply_to.clone(),
        sent_at: p.sent_at,
        internal_date: Utc
            .timestamp_millis_opt(m.meta.internal_date_ms)
            .single()
            .ok_or_else(|| {
                EngineError::Internal(format!(
                    "message {}: internalDate {} out of range",
                    m.meta.id, m.meta.internal_date_ms
                ))
            })?,
        label_ids: m.meta.label_ids.clone(),
        snippet: None,
        size_estimate: i64::try_from(m.meta.size_estimate).ok(),
        // 0: not known (an imported message); Gmail's historyIds start above it.
        history_id: match m.meta.history_id {
            0 => None,
            h => Some(as_i64("historyId", h)?),
        },
        body_text: p.body_text.clone(),
        body_html: p.body_html.clone(),
        raw_sha256: m.raw_blob.sha256.clone(),
        raw_size: m.raw_blob.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blobs before rows: puts that were deferred are refused until the store
    /// has synced them, and a re-put of a known blob owes a sync too (its
    /// first writer may not have flushed it).
    #[tokio::test]
    async fn rows_wait_for_their_deferred_blobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::from_url(dir.path().to_str().expect("utf-8"), "org")
            .await
            .expect("store");
        let mut work = BlobPuts::default();
        check_blobs_durable(&store, &work, "thread t1").expect("nothing stored, nothing owed");

        let put = store
            .put_deferred(bytes::Bytes::from_static(b"raw message"))
            .await
            .expect("put");
        work.add(&put);
        let err = check_blobs_durable(&store, &work, "thread t1").expect_err("not yet durable");
        assert!(err.to_string().contains("thread t1"), "{err}");

        make_blobs_durable(&store, [&work]).await.expect("sync");
        check_blobs_durable(&store, &work, "thread t1").expect("durable after the sync");

        let mut again = BlobPuts::default();
        let reput = store
            .put_deferred(bytes::Bytes::from_static(b"raw message"))
            .await
            .expect("re-put");
        assert!(!reput.created);
        again.add(&reput);
        assert_eq!(again.counts.deduplicated, 1);
        check_blobs_durable(&store, &again, "thread t2")
            .expect_err("a re-put waits for a sync as well");
        make_blobs_durable(&store, [&work, &again])
            .await
            .expect("sync");
        check_blobs_durable(&store, &again, "thread t2").expect("durable");

        // Puts already durable owe nothing: no sync, so another writer's
        // later put stays pending until a sync of its own.
        let later = store
            .put_deferred(bytes::Bytes::from_static(b"another message"))
            .await
            .expect("put");
        let ticket = later.pending.expect("a deferred put is pending");
        make_blobs_durable(&store, [&work, &again])
            .await
            .expect("nothing owed");
        assert!(!store.is_durable(ticket), "a sync ran for durable puts");
        let mut third = BlobPuts::default();
        third.add(&later);
        make_blobs_durable(&store, [&work, &third])
            .await
            .expect("sync");
        assert!(store.is_durable(ticket));
    }
}
