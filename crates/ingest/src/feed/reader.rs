//! The org's ledger events in commit order, from a position per mailbox.
//!
//! Within a mailbox the order is seq, which is commit order (the chain lock
//! serialises a mailbox's appends, each waiting for the previous commit), and
//! `seq > position` can never pass over an event that commits later. Across
//! mailboxes there is no shared sequence to follow without gaps, so events
//! are merged by their commit time (the database clock), ties by mailbox:
//! the order a reader of the whole org would have seen them commit, while
//! each mailbox's own order stays exact.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::repo::{FeedMailbox, FeedRow, RepoError, Repository};

use super::FeedEvent;

/// Where a reader starts in a mailbox it has no position for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Every event (`--since 0`, a new consumer).
    Beginning,
    /// After this seq in every mailbox (`--since SEQ`, meant with `--mailbox`).
    AfterSeq(i64),
    /// After each mailbox's head when the reader opens (`--since now`); a
    /// mailbox added later from its first event.
    Now,
}

/// Reads the feed of one org (or one of its mailboxes).
pub struct FeedReader {
    repo: Arc<dyn Repository>,
    org: String,
    only: Option<i64>,
    start: Start,
    /// mailbox id → last seq read (buffered or handed out).
    read: BTreeMap<i64, i64>,
    buffers: BTreeMap<i64, VecDeque<FeedEvent>>,
    /// The mailboxes read and their heads, as of the last look.
    mailboxes: BTreeMap<i64, FeedMailbox>,
    /// Events fetched from one mailbox at a time.
    fetch: i64,
}

impl FeedReader {
    /// A reader of `org`'s events (only mailbox `only`'s, when given) after
    /// `positions` (mailbox id → seq), and after `start` in other mailboxes.
    pub async fn open(
        repo: Arc<dyn Repository>,
        org: &str,
        only: Option<i64>,
        start: Start,
        positions: BTreeMap<i64, i64>,
        fetch: usize,
    ) -> Result<FeedReader, RepoError> {
        let mut reader = FeedReader {
            repo,
            org: org.to_owned(),
            only,
            start: Start::Beginning,
            read: positions,
            buffers: BTreeMap::new(),
            mailboxes: BTreeMap::new(),
            fetch: i64::try_from(fetch.max(1)).unwrap_or(i64::MAX),
        };
        match start {
            Start::Now => {
                for m in reader.repo.feed_mailboxes(org).await? {
                    reader.read.entry(m.id).or_insert(m.head);
                }
            }
            other => reader.start = other,
        }
        Ok(reader)
    }

    fn default_position(&self) -> i64 {
        match self.start {
            Start::AfterSeq(seq) => seq,
            Start::Beginning | Start::Now => 0,
        }
    }

    /// Up to `max` events not handed out yet, in commit order; empty when
    /// every mailbox is read to its head.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<FeedEvent>, RepoError> {
        self.look().await?;
        let ids: Vec<i64> = self.mailboxes.keys().copied().collect();
        for id in ids {
            self.fill(id).await?;
        }
        let mut batch = Vec::with_capacity(max.min(4096));
        while batch.len() < max {
            // The mailbox whose next event committed first. Every mailbox
            // with events left has some buffered (`fill` below), so none
            // is passed over for lack of a fetch.
            let next = self
                .buffers
                .iter()
                .filter_map(|(id, q)| q.front().map(|e| (e.committed_at, *id)))
                .min();
            let Some((_, id)) = next else { break };
            if let Some(event) = self.buffers.get_mut(&id).and_then(VecDeque::pop_front) {
                batch.push(event);
            }
            self.fill(id).await?;
        }
        Ok(batch)
    }

    /// Reads the org's mailboxes and their heads.
    async fn look(&mut self) -> Result<(), RepoError> {
        let default = self.default_position();
        self.mailboxes.clear();
        for m in self.repo.feed_mailboxes(&self.org).await? {
            if self.only.is_some_and(|only| only != m.id) {
                continue;
            }
            self.read.entry(m.id).or_insert(default);
            self.mailboxes.insert(m.id, m);
        }
        Ok(())
    }

    /// Fetches mailbox `id`'s next events when its buffer ran dry and its
    /// ledger (as of the last look) goes past what was read.
    async fn fill(&mut self, id: i64) -> Result<(), RepoError> {
        let Some(m) = self.mailboxes.get(&id).cloned() else {
            return Ok(());
        };
        let read = self.read.get(&id).copied().unwrap_or(0);
        let empty = self.buffers.get(&id).is_none_or(VecDeque::is_empty);
        if !empty || m.head <= read {
            return Ok(());
        }
        let rows = self.repo.feed_events(m.id, read, self.fetch).await?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(());
        };
        if rows.first().map(|r| r.seq) != Some(read + 1) {
            // Never hand out a batch with a hole: the chain is contiguous,
            // so this is a damaged ledger, for `verify` to name.
            return Err(RepoError::Corrupt(format!(
                "the ledger of mailbox {} has no event {} (next is {:?}); run verify",
                m.email,
                read + 1,
                rows.first().map(|r| r.seq)
            )));
        }
        let names = self.names(m.id, &rows).await?;
        let queue = self.buffers.entry(m.id).or_default();
        queue.extend(
            rows.into_iter()
                .map(|row| FeedEvent::new(&self.org, &m.email, row, &names)),
        );
        self.read.insert(m.id, last);
        Ok(())
    }

    async fn names(
        &self,
        mailbox_id: i64,
        rows: &[FeedRow],
    ) -> Result<HashMap<String, String>, RepoError> {
        let mut ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.payload.get("label_ids")?.as_array().cloned())
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.repo.label_names(mailbox_id, &ids).await
    }
}

/// The position each mailbox reaches once `batch` is acknowledged.
pub fn positions_after(batch: &[FeedEvent]) -> Vec<(i64, i64)> {
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for e in batch {
        let seq = last.entry(e.mailbox_id).or_insert(e.seq);
        *seq = (*seq).max(e.seq);
    }
    last.into_iter().collect()
}
