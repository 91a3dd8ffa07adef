//! The delivery loop of `changes`: read a batch, hand it to the sink, and
//! only then acknowledge it (at least once: a crash between the two
//! re-delivers the batch, never skips it); with `follow`, wait for the next
//! commit instead of returning.

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::repo::{HeldConsumer, RepoError, Repository};

use super::reader::positions_after;
use super::{FeedError, FeedEvent, FeedReader};

/// Where events go: standard output, a webhook.
#[async_trait]
pub trait Sink: Send {
    /// Returns once the batch is durably handed over (written and flushed,
    /// or answered 2xx).
    async fn deliver(&mut self, batch: &[FeedEvent]) -> Result<(), FeedError>;
}

/// What a delivery run handed over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    pub events: u64,
    pub batches: u64,
    /// Stopped by `stop` (a signal) rather than by running out of events.
    pub interrupted: bool,
}

/// How long a follower waits for a wake-up before looking anyway (a lost
/// notification costs at most this).
const FOLLOW_RECHECK: Duration = Duration::from_secs(1);

/// Delivers `reader`'s events to `sink` in batches of `batch_size`,
/// acknowledging each for `consumer` after the sink took it. Without
/// `follow`, returns once everything committed so far is delivered.
pub async fn deliver(
    repo: &dyn Repository,
    reader: &mut FeedReader,
    consumer: Option<&HeldConsumer>,
    sink: &mut dyn Sink,
    batch_size: usize,
    follow: bool,
    stop: &CancellationToken,
) -> Result<Delivery, FeedError> {
    // Listening starts before the first read, so no commit falls between.
    let mut waiter = if follow {
        Some(repo.ledger_waiter().await?)
    } else {
        None
    };
    let mut done = Delivery::default();
    loop {
        if stop.is_cancelled() {
            done.interrupted = true;
            return Ok(done);
        }
        if let Some(held) = consumer
            && !repo.consumer_still_held(held).await?
        {
            return Err(RepoError::ConsumerFenced {
                name: held.name.clone(),
            }
            .into());
        }
        let batch = reader.next_batch(batch_size.max(1)).await?;
        if batch.is_empty() {
            let Some(waiter) = waiter.as_mut() else {
                return Ok(done);
            };
            tokio::select! {
                woke = waiter.wait(FOLLOW_RECHECK) => woke?,
                () = stop.cancelled() => {}
            }
            continue;
        }
        sink.deliver(&batch).await?;
        if let Some(held) = consumer {
            repo.ack_consumer(held, &positions_after(&batch)).await?;
        }
        done.events += batch.len() as u64;
        done.batches += 1;
    }
}
