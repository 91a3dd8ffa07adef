//! The quarantine's retry pass: every run first tries the mailbox's
//! quarantined messages that are due (see `repo::quarantine` for the policy),
//! by id, exactly as sync fetches new mail.
//!
//! This is what lets a run pass a message it could not ingest without losing
//! it: the failure is recorded in the same transaction that moves the cursor
//! on, and the row stays until the message is stored, gone from Gmail, or out
//! of scope (in SPAM or TRASH, from where a rescue brings it back as new
//! mail). A message that keeps failing is retried with backoff up to
//! `MAX_ATTEMPTS` runs, then given up and left for `status` and `verify` to
//! name until an operator requeues it.

use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::commit::Batch;
use super::run::Run;
use super::{Engine, EngineError};

/// Quarantined messages tried per run: a backlog drains over a few runs
/// instead of delaying new mail behind it.
const RETRIES_PER_RUN: i64 = 1_000;
/// Messages per retry batch (one transaction each).
const RETRY_BATCH: usize = 100;
/// Fetches in flight (the client's per-mailbox cap bounds the total).
const IN_FLIGHT: usize = 16;

impl Engine {
    /// Tries the mailbox's due quarantined messages once each, committing as
    /// it goes; then tells the run which messages the quarantine still holds.
    pub(crate) async fn retry_quarantined(
        &self,
        run: &Run,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        self.retry_due(run, cancel).await?;
        let held = self
            .riding_out("read quarantined messages", || async {
                Ok(self.repo.quarantined(Some(run.mailbox_id())).await?)
            })
            .await?;
        run.set_quarantined(held.into_iter().map(|q| q.provider_message_id).collect());
        Ok(())
    }

    async fn retry_due(&self, run: &Run, cancel: &CancellationToken) -> Result<(), EngineError> {
        let due = self
            .riding_out("read due quarantined messages", || async {
                Ok(self
                    .repo
                    .due_quarantined(run.mailbox_id(), RETRIES_PER_RUN)
                    .await?)
            })
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        info!(due = due.len(), "retrying quarantined messages");
        let ids: Vec<String> = due.into_iter().map(|q| q.provider_message_id).collect();
        for chunk in ids.chunks(RETRY_BATCH) {
            if cancel.is_cancelled() {
                break;
            }
            let fetched: Vec<(String, Option<_>)> = stream::iter(chunk.iter().cloned())
                .map(|id| {
                    async move {
                        let result = self
                            .fetch_in_scope(run, id.clone(), "not found: deleted while quarantined")
                            .await?;
                        Ok::<_, EngineError>((id, result))
                    }
                    .boxed()
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect()
                .await?;
            let mut batch = Batch::default();
            let mut results = Vec::with_capacity(fetched.len());
            for (id, result) in fetched {
                match result {
                    Some(result) => results.push(result),
                    // Out of scope now: a rescue from SPAM/TRASH fetches it as new mail.
                    None => batch.released.push(id),
                }
            }
            batch.add_messages(results);
            self.commit(run, &batch).await?;
        }
        Ok(())
    }
}
