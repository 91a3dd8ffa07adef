//! Live counters of a run, shared with whatever shows progress (a terminal
//! bar, periodic log lines). Lock-free: the pipeline stages bump them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Progress {
    pub threads_listed: AtomicU64,
    pub threads_changed: AtomicU64,
    pub threads_done: AtomicU64,
    pub messages_fetched: AtomicU64,
    pub messages_stored: AtomicU64,
    pub bytes_fetched: AtomicU64,
    /// Set once listing has finished: `threads_changed` is then final (for an ETA).
    pub listing_done: std::sync::atomic::AtomicBool,
}

/// A plain copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub threads_listed: u64,
    pub threads_changed: u64,
    pub threads_done: u64,
    pub messages_fetched: u64,
    pub messages_stored: u64,
    pub bytes_fetched: u64,
    pub listing_done: bool,
}

impl Progress {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            threads_listed: self.threads_listed.load(Ordering::Relaxed),
            threads_changed: self.threads_changed.load(Ordering::Relaxed),
            threads_done: self.threads_done.load(Ordering::Relaxed),
            messages_fetched: self.messages_fetched.load(Ordering::Relaxed),
            messages_stored: self.messages_stored.load(Ordering::Relaxed),
            bytes_fetched: self.bytes_fetched.load(Ordering::Relaxed),
            listing_done: self.listing_done.load(Ordering::Relaxed),
        }
    }
}
