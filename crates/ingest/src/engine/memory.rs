//! The in-flight message memory budget: bytes, not message counts.
//!
//! A Gmail message may be 35 MB, and while one is fetched and archived it is
//! held several times over: the JSON response (base64, a third larger), the
//! decoded raw bytes, and the parser's decoded parts until they reach the
//! store. Counting messages bounds nothing when sizes differ by four orders of
//! magnitude, so every fetch first reserves its estimated cost from one budget
//! shared by all runs of an engine (clones share it) and holds it until the
//! message is archived; what is queued for the writer afterwards is metadata
//! and bodies, bounded by the writer's own message budget.
//!
//! The cost of a message is [`COST_FACTOR`] × its size. A fetch that knows
//! the size (threads.get minimal carries sizeEstimate) reserves it up front.
//! A fetch by id (a first backfill's new threads, sync, quarantine retries)
//! learns it only from the response, so it reserves a *size hint* — the
//! largest recent message, decaying by an eighth per message, starting at
//! [`INITIAL_HINT`] — and the rest before parsing: a mailbox of 35 MB messages
//! then runs two or three at a time from the start, one of small mail soon
//! runs at full concurrency. (The hint is a heuristic for the download only:
//! a burst of huge messages right after many small ones can exceed the budget
//! while downloading, never while parsing.) A message costlier than the whole
//! budget waits for all of it and is handled alone.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Copies of a message alive at its peak (JSON text, decoded bytes, parts).
pub const COST_FACTOR: u64 = 3;
/// The least a fetch of unknown size reserves.
pub const UNKNOWN_SIZE: u64 = 256 * 1024;
/// The size hint before any message was seen: slow start.
pub const INITIAL_HINT: u64 = 32 * 1024 * 1024;
/// The default budget: 256 MiB.
pub const DEFAULT_BUDGET: u64 = 256 * 1024 * 1024;

/// Budget units are KiB, so a u32 semaphore can hold any sane budget.
const UNIT: u64 = 1024;

/// A byte budget shared by every clone.
#[derive(Clone)]
pub struct MessageMemory {
    permits: Arc<Semaphore>,
    units: u32,
    /// Bytes a message of unknown size is assumed to have (see the header).
    hint: Arc<AtomicU64>,
}

impl MessageMemory {
    /// A budget of `bytes` (at least one 1 KiB unit, at most 4 TiB).
    pub fn new(bytes: u64) -> Self {
        let units = u32::try_from((bytes / UNIT).max(1)).unwrap_or(u32::MAX);
        MessageMemory {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
            hint: Arc::new(AtomicU64::new(INITIAL_HINT)),
        }
    }

    /// The budget in bytes.
    pub fn budget(&self) -> u64 {
        u64::from(self.units) * UNIT
    }

    /// Waits until a message of `size` bytes fits, and holds its share.
    pub(crate) async fn reserve(&self, size: u64) -> Reservation {
        let units = self.units_for(size);
        let mut r = Reservation {
            memory: self.clone(),
            held: Vec::new(),
            units: 0,
        };
        // The semaphore is never closed, so acquiring cannot fail; if it
        // somehow did, going on unbudgeted beats failing the run.
        if let Ok(p) = Arc::clone(&self.permits).acquire_many_owned(units).await {
            r.held.push(p);
            r.units = units;
        }
        r
    }

    /// Waits until a message of unknown size fits, as far as recent
    /// messages tell; grow the reservation once the size is known.
    pub(crate) async fn reserve_unknown(&self) -> Reservation {
        let hint = self.hint.load(Ordering::Relaxed).max(UNKNOWN_SIZE);
        self.reserve(hint).await
    }

    /// A message of `size` bytes was seen: the hint follows large ones at
    /// once and small ones slowly.
    fn observe(&self, size: u64) {
        let _ = self
            .hint
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(size.max(h - h / 8))
            });
    }

    fn units_for(&self, size: u64) -> u32 {
        let units = size.saturating_mul(COST_FACTOR).div_ceil(UNIT).max(1);
        u32::try_from(units).unwrap_or(u32::MAX).min(self.units)
    }
}

impl Default for MessageMemory {
    fn default() -> Self {
        MessageMemory::new(DEFAULT_BUDGET)
    }
}

impl fmt::Debug for MessageMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageMemory")
            .field("budget", &self.budget())
            .field(
                "available",
                &(self.permits.available_permits() as u64 * UNIT),
            )
            .finish()
    }
}

/// One message's share of the budget, given back when dropped.
pub(crate) struct Reservation {
    memory: MessageMemory,
    held: Vec<OwnedSemaphorePermit>,
    units: u32,
}

impl Reservation {
    /// Holds enough for a message of `size` bytes (never less than before),
    /// and tells the budget's size hint. Never waits: this message is in
    /// memory already, and waiting behind a new reservation that waits for
    /// this one to finish would deadlock. What is not free now is taken as
    /// far as it goes (the budget then admits nothing new until it is back).
    pub(crate) fn grow_to(&mut self, size: u64) {
        self.memory.observe(size);
        let want = self.memory.units_for(size);
        if want <= self.units {
            return;
        }
        let free = u32::try_from(self.memory.permits.available_permits()).unwrap_or(u32::MAX);
        let take = (want - self.units).min(free);
        if take == 0 {
            return;
        }
        if let Ok(p) = Arc::clone(&self.memory.permits).try_acquire_many_owned(take) {
            self.held.push(p);
            self.units += take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reservations_wait_for_bytes_not_counts() {
        let memory = MessageMemory::new(30 * 1024 * 1024);
        // 10 MB costs 30 MB: the whole budget.
        let big = memory.reserve(10 * 1024 * 1024).await;
        let small = tokio::time::timeout(Duration::from_millis(50), memory.reserve(1)).await;
        assert!(small.is_err(), "a full budget admits nothing more");
        drop(big);
        let a = memory.reserve(1024 * 1024).await;
        let b = memory.reserve(1024 * 1024).await;
        assert_eq!(memory.permits.available_permits(), 30 * 1024 - 2 * 3 * 1024);
        drop((a, b));
        assert_eq!(memory.permits.available_permits(), 30 * 1024);
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_runs_alone() {
        let memory = MessageMemory::new(1024 * 1024);
        let huge = memory.reserve(u64::MAX).await;
        assert_eq!(memory.permits.available_permits(), 0);
        drop(huge);
        let mut grown = memory.reserve_unknown().await;
        grown.grow_to(10 * 1024 * 1024);
        assert_eq!(memory.permits.available_permits(), 0);
        grown.grow_to(1);
        assert_eq!(memory.permits.available_permits(), 0, "never shrinks");
    }

    /// Growing never waits, so a fetch holding memory cannot be stuck
    /// behind a new reservation waiting for that very memory.
    #[tokio::test]
    async fn growing_never_waits_behind_a_queued_reservation() {
        let memory = MessageMemory::new(300 * 1024);
        let mut a = memory.reserve(50 * 1024).await; // 150 KiB
        let b = memory.reserve(40 * 1024).await; // 120 KiB
        let queued = tokio::spawn({
            let memory = memory.clone();
            async move { memory.reserve(50 * 1024).await.units }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Wants 210 KiB. The 30 free are already promised to the queued
        // reservation (tokio's semaphore is fair), so it goes on in debt
        // instead of waiting for the queued one, which waits for it.
        a.grow_to(70 * 1024);
        assert_eq!(a.units, 150);
        assert!(!queued.is_finished());
        drop((a, b));
        assert_eq!(queued.await.expect("queued"), 150);
    }

    #[tokio::test]
    async fn unknown_sizes_start_slow_and_follow_what_was_seen() {
        let memory = MessageMemory::new(256 * 1024 * 1024);
        let first = memory.reserve_unknown().await;
        assert_eq!(first.units, 3 * 32 * 1024, "slow start: the initial hint");
        drop(first);
        for _ in 0..64 {
            memory.reserve_unknown().await.grow_to(10_000);
        }
        let small = memory.reserve_unknown().await;
        assert_eq!(
            small.units,
            3 * 256,
            "decayed to the floor after small mail"
        );
        drop(small);
        memory.reserve_unknown().await.grow_to(35_000_000);
        let after_big = memory.reserve_unknown().await;
        assert_eq!(after_big.units, (3 * 35_000_000u64).div_ceil(1024) as u32);
    }
}
