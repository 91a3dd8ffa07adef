//! The backfill's database stage: fetched threads in, batches out to the
//! committer. Fetched work waits here under a budget of messages, not threads
//! (a thread may hold hundreds), so memory stays bounded whatever the mailbox;
//! whatever is ready when a batch starts joins it, so batches fill up under
//! load and a lone thread commits at once when idle.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::commit::Batch;
use super::run::Run;
use super::thread_fetch::ThreadWork;
use super::{Engine, EngineError, Progress};

impl Engine {
    /// Drains `rx`, committing batches of about `batch_messages` messages.
    pub(crate) async fn write_threads(
        &self,
        run: &Run,
        mut rx: mpsc::Receiver<QueuedWork>,
        progress: &Progress,
    ) -> Result<(), EngineError> {
        let mut batch = Batch::default();
        // Released after the commit: the batch being written counts against
        // the queue's budget until its memory is freed.
        let mut permits: Vec<OwnedSemaphorePermit> = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut size = first.work.fetched.messages.len() + 1;
            batch.threads.push(first.work);
            permits.push(first.permit);
            while size < self.options.batch_messages {
                match rx.try_recv() {
                    Ok(queued) => {
                        size += queued.work.fetched.messages.len() + 1;
                        batch.threads.push(queued.work);
                        permits.push(queued.permit);
                    }
                    Err(_) => break,
                }
            }
            let done = self.commit(run, &batch).await?;
            batch = Batch::default();
            permits.clear();
            Progress::add(
                &progress.messages_stored,
                done.messages.inserted + done.messages.updated,
            );
            Progress::add(&progress.threads_done, done.threads.total());
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
        let cost = (work.fetched.messages.len() + 1).min(self.capacity);
        let permit = Arc::clone(&self.messages)
            .acquire_many_owned(u32::try_from(cost).unwrap_or(u32::MAX))
            .await
            .map_err(|_| EngineError::Internal("write queue closed".into()))?;
        Ok(QueuedWork { work, permit })
    }
}
