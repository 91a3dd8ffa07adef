//! The database stage: whole threads in, one transaction per batch out.
//!
//! A batch is a set of complete `ThreadWork`s, so a thread's historyId is
//! always committed together with the last of its messages: a crash can never
//! leave a thread marked current while some of its messages are missing. Rows
//! and their ledger events share the transaction: the ledger never claims what
//! the tables lack, and vice versa.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use ledger::{EventType, NewEvent};
use serde_json::json;
use sqlx::PgConnection;
use store::BlobStore;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::debug;

use super::run::history_i64;
use super::summary::Tally;
use super::thread_fetch::{RunContext, ThreadWork};
use super::{Engine, EngineError, Progress, RunLease};
use crate::repo::{self, AttachmentUpsert, LabelUpdate, MessageUpsert, Outcome, ThreadUpsert};

impl Engine {
    /// Drains `rx`, committing batches of about `batch_messages` messages.
    /// Each batch's counts are merged into `committed` and recorded on the run
    /// row in the batch's own transaction.
    pub(crate) async fn write_threads(
        &self,
        ctx: &RunContext,
        lease: &RunLease,
        mut rx: mpsc::Receiver<QueuedWork>,
        progress: &Progress,
        committed: &Mutex<Tally>,
    ) -> Result<(), EngineError> {
        let mut batch: Vec<ThreadWork> = Vec::new();
        // Released after the commit: the batch being written counts against
        // the queue's budget until its memory is freed.
        let mut permits: Vec<OwnedSemaphorePermit> = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut size = first.work.messages.len() + 1;
            batch.push(first.work);
            permits.push(first.permit);
            // Take whatever else is ready, up to the batch size, without waiting:
            // under load batches fill up; when idle, a thread commits at once.
            while size < self.options.batch_messages {
                match rx.try_recv() {
                    Ok(queued) => {
                        size += queued.work.messages.len() + 1;
                        batch.push(queued.work);
                        permits.push(queued.permit);
                    }
                    Err(_) => break,
                }
            }
            // Blobs before rows, flushed once for the whole batch.
            make_blobs_durable(&self.store, &batch).await?;
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(EngineError::db("begin batch"))?;
            let done =
                write_batch(&mut tx, ctx, &self.store, &batch, &PageChanges::default()).await?;
            let mut so_far = committed.lock().map(|t| t.clone()).unwrap_or_default();
            so_far.merge(done.clone());
            lease.record_counts_in(&mut tx, &so_far).await?;
            tx.commit().await.map_err(EngineError::db("commit batch"))?;
            debug!(threads = batch.len(), "batch committed");
            batch.clear();
            permits.clear();
            Progress::add(
                &progress.messages_stored,
                done.messages.inserted + done.messages.updated,
            );
            Progress::add(&progress.threads_done, done.threads.total());
            if let Ok(mut t) = committed.lock() {
                *t = so_far;
            }
        }
        Ok(())
    }
}

/// The message budget of the queue between fetchers and writer.
#[derive(Debug, Clone)]
pub(crate) struct QueueBudget {
    messages: Arc<Semaphore>,
    capacity: usize,
}

/// A fetched thread waiting for the writer, holding its share of the budget.
#[derive(Debug)]
pub(crate) struct QueuedWork {
    pub work: ThreadWork,
    permit: OwnedSemaphorePermit,
}

impl QueueBudget {
    pub(crate) fn new(messages: usize) -> Self {
        let capacity = messages.clamp(1, u32::MAX as usize);
        QueueBudget {
            messages: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// How many queued threads the budget can ever admit (each costs at least one).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Waits until the thread's messages (plus one for the thread) fit. A
    /// thread larger than the whole budget waits for all of it.
    pub(crate) async fn admit(&self, work: ThreadWork) -> Result<QueuedWork, EngineError> {
        let cost = (work.messages.len() + 1).min(self.capacity);
        let permit = Arc::clone(&self.messages)
            .acquire_many_owned(u32::try_from(cost).unwrap_or(u32::MAX))
            .await
            .map_err(|_| EngineError::Internal("write queue closed".into()))?;
        Ok(QueuedWork { work, permit })
    }
}

/// Changes an incremental sync applies beside new messages.
#[derive(Debug, Default)]
pub(crate) struct PageChanges {
    /// Label sets of stored messages, in history order (the last one wins).
    pub label_updates: Vec<LabelUpdate>,
    /// Messages Gmail deleted: soft-deleted here.
    pub deletes: Vec<String>,
}

/// Makes every blob the batch archived durable: one store sync covers the
/// deferred puts of all its messages. Call it before opening the transaction
/// that writes the batch, so no transaction waits on the disk.
pub(crate) async fn make_blobs_durable<'a>(
    store: &BlobStore,
    batch: impl IntoIterator<Item = &'a ThreadWork>,
) -> Result<(), EngineError> {
    if batch.into_iter().any(|w| w.blobs.durable_after.is_some()) {
        store.sync().await?;
    }
    Ok(())
}

/// Refuses to write rows for blobs the store has not made durable: a crash
/// of the machine could otherwise leave a row pointing at nothing.
pub(crate) fn check_blobs_durable(store: &BlobStore, work: &ThreadWork) -> Result<(), EngineError> {
    match work.blobs.durable_after {
        Some(ticket) if !store.is_durable(ticket) => Err(EngineError::Internal(format!(
            "thread {}: its blobs are not yet durable in the store; rows must not be written \
             before make_blobs_durable",
            work.provider_thread_id
        ))),
        _ => Ok(()),
    }
}

/// Writes one batch inside the caller's transaction. The batch's blobs must
/// already be durable (`make_blobs_durable`).
pub(crate) async fn write_batch(
    conn: &mut PgConnection,
    ctx: &RunContext,
    store: &BlobStore,
    batch: &[ThreadWork],
    changes: &PageChanges,
) -> Result<Tally, EngineError> {
    let mut tally = Tally::default();
    let mut events: Vec<NewEvent> = Vec::new();

    // 1. Blobs: the objects are already in the store, durably.
    let mut blob_rows = Vec::new();
    for work in batch {
        check_blobs_durable(store, work)?;
        tally.blobs.stored += work.blobs.counts.stored;
        tally.blobs.deduplicated += work.blobs.counts.deduplicated;
        blob_rows.extend(work.orphan_blobs.iter().cloned());
        for m in &work.messages {
            blob_rows.push(m.raw_blob.clone());
            blob_rows.extend(m.parts.iter().map(|(_, b)| b.clone()));
        }
    }
    repo::pg::upsert_blobs(conn, &blob_rows).await?;

    // 2. Threads.
    let thread_rows: Vec<ThreadUpsert> = batch
        .iter()
        .map(|w| {
            Ok(ThreadUpsert {
                mailbox_id: ctx.mailbox_id,
                provider_thread_id: w.provider_thread_id.clone(),
                history_id: w.history_id.map(history_i64).transpose()?,
                snippet: w.snippet.clone(),
            })
        })
        .collect::<Result<_, EngineError>>()?;
    let threads = repo::pg::upsert_threads(conn, &thread_rows).await?;
    let mut thread_ids: HashMap<&str, i64> = HashMap::new();
    for (row, result) in thread_rows.iter().zip(&threads) {
        tally.threads.record(result.outcome);
        thread_ids.insert(row.provider_thread_id.as_str(), result.id);
        if result.outcome != Outcome::Unchanged {
            events.push(NewEvent::new(
                EventType::ThreadIngested,
                format!("thread:{}", row.provider_thread_id),
                json!({
                    "outcome": result.outcome,
                    "history_id": row.history_id.map(|h| h.to_string()),
                }),
            ));
        }
    }

    // 3. Messages.
    let mut message_rows = Vec::new();
    for work in batch {
        let thread_id = thread_ids[work.provider_thread_id.as_str()];
        for m in &work.messages {
            let p = &m.parsed;
            message_rows.push(MessageUpsert {
                mailbox_id: ctx.mailbox_id,
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
                history_id: Some(history_i64(m.meta.history_id)?),
                body_text: p.body_text.clone(),
                body_html: p.body_html.clone(),
                raw_sha256: m.raw_blob.sha256.clone(),
                raw_size: m.raw_blob.size,
            });
        }
    }
    let messages = repo::pg::upsert_messages(conn, &message_rows).await?;

    // 4. Attachments, keyed by (message row, MIME part path).
    let mut attachment_rows = Vec::new();
    let mut attachment_owner = Vec::new();
    let fetched = batch.iter().flat_map(|w| w.messages.iter());
    for ((m, row), result) in fetched.zip(&message_rows).zip(&messages) {
        tally.messages.record(result.outcome);
        if result.outcome != Outcome::Unchanged {
            events.push(NewEvent::new(
                EventType::MessageIngested,
                format!("message:{}", row.provider_message_id),
                json!({
                    "outcome": result.outcome,
                    "thread_id": row.provider_thread_id,
                    "raw_sha256": row.raw_sha256,
                    "raw_size": row.raw_size,
                    "history_id": row.history_id.map(|h| h.to_string()),
                    "attachments": m.parts.len(),
                }),
            ));
        }
        for (part, blob) in &m.parts {
            attachment_rows.push(AttachmentUpsert {
                message_id: result.id,
                part_id: part.part_id.to_string(),
                filename: part.filename.clone(),
                mime_type: part.mime_type.clone(),
                content_id: part.content_id.clone(),
                disposition: part.disposition.clone(),
                size: blob.size,
                sha256: blob.sha256.clone(),
            });
            attachment_owner.push(row.provider_message_id.as_str());
        }
    }
    let attachments = repo::pg::upsert_attachments(conn, &attachment_rows).await?;
    for ((row, owner), result) in attachment_rows
        .iter()
        .zip(&attachment_owner)
        .zip(&attachments)
    {
        tally.attachments.record(result.outcome);
        if result.outcome != Outcome::Unchanged {
            events.push(NewEvent::new(
                EventType::AttachmentSaved,
                format!("message:{owner}/part:{}", row.part_id),
                json!({
                    "outcome": result.outcome,
                    "sha256": row.sha256,
                    "size": row.size,
                    "mime_type": row.mime_type,
                }),
            ));
        }
    }

    // 5. Labels of messages already stored.
    let label_updates: Vec<LabelUpdate> = batch
        .iter()
        .flat_map(|w| w.label_updates.iter().cloned())
        .chain(changes.label_updates.iter().cloned())
        .collect();
    let changed = repo::pg::update_labels(conn, ctx.mailbox_id, &label_updates).await?;
    let by_id: HashMap<&str, &LabelUpdate> = label_updates
        .iter()
        .map(|u| (u.provider_message_id.as_str(), u))
        .collect();
    tally.messages.updated += changed.len() as u64;
    tally.messages.unchanged += (by_id.len() - changed.len()) as u64;
    tally.labels_changed += changed.len() as u64;
    for id in &changed {
        events.push(NewEvent::new(
            EventType::LabelsChanged,
            format!("message:{id}"),
            json!({"label_ids": by_id.get(id.as_str()).map(|u| u.label_ids.clone())}),
        ));
    }

    // 6. Deletions: soft, the row and its blobs stay.
    let deleted =
        repo::pg::soft_delete_messages(conn, ctx.mailbox_id, &changes.deletes, Utc::now()).await?;
    tally.messages_deleted += deleted.len() as u64;
    for id in &deleted {
        events.push(NewEvent::new(
            EventType::MessageDeleted,
            format!("message:{id}"),
            json!({}),
        ));
    }

    // 7. Thread subject, counts and times follow from the stored messages.
    let mut touched: Vec<i64> = thread_ids.values().copied().collect();
    touched.extend(repo::pg::thread_ids_of_messages(conn, ctx.mailbox_id, &changed).await?);
    touched.extend(repo::pg::thread_ids_of_messages(conn, ctx.mailbox_id, &deleted).await?);
    repo::pg::refresh_threads(conn, &touched).await?;

    // 8. Skipped messages are recorded, not lost.
    for work in batch {
        for s in &work.skipped {
            events.push(NewEvent::new(
                EventType::MessageSkipped,
                format!("message:{}", s.message_id),
                json!({"reason": s.reason, "thread_id": work.provider_thread_id}),
            ));
            tally.skipped.push(s.clone());
        }
    }

    ledger::append(conn, ctx.mailbox_id, ctx.run_id, &events).await?;
    tally.threads_fetched += batch.len() as u64;
    tally.messages_fetched += message_rows.len() as u64;
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blobs before rows: a thread whose blobs were put deferred is refused
    /// until the store has synced them, and a re-put of a known blob owes a
    /// sync too (its first writer may not have flushed it).
    #[tokio::test]
    async fn rows_wait_for_their_deferred_blobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::from_url(dir.path().to_str().expect("utf-8"), "org")
            .await
            .expect("store");
        let mut work = ThreadWork::new("t1".into(), None);
        check_blobs_durable(&store, &work).expect("nothing stored, nothing owed");

        let put = store
            .put_deferred(bytes::Bytes::from_static(b"raw message"))
            .await
            .expect("put");
        work.blobs.add(&put);
        let err = check_blobs_durable(&store, &work).expect_err("not yet durable");
        assert!(err.to_string().contains("thread t1"), "{err}");

        make_blobs_durable(&store, [&work]).await.expect("sync");
        check_blobs_durable(&store, &work).expect("durable after the sync");

        let mut again = ThreadWork::new("t2".into(), None);
        let reput = store
            .put_deferred(bytes::Bytes::from_static(b"raw message"))
            .await
            .expect("re-put");
        assert!(!reput.created);
        again.blobs.add(&reput);
        assert_eq!(again.blobs.counts.deduplicated, 1);
        check_blobs_durable(&store, &again).expect_err("a re-put waits for a sync as well");
        make_blobs_durable(&store, [&work, &again])
            .await
            .expect("sync");
        check_blobs_durable(&store, &again).expect("durable");
    }
}
