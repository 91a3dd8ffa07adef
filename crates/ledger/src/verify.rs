//! `verify`: walk a mailbox's chain and prove it intact, or say where it is not.
//!
//! One pass in seq order, streamed (rows are hashed as they arrive, never all held in
//! memory). Per row: seq follows the previous one, prev_hash equals the previous row's hash
//! (the genesis hash for seq 1), the stored hash equals the one recomputed from the row's own
//! columns, the run belongs to this mailbox, and the run has no earlier terminal event.
//! After the walk, every finished run (status not 'running') must have exactly one terminal
//! event, of the type its status names (completed ↔ sync.completed, failed ↔ sync.failed,
//! interrupted ↔ sync.interrupted).
//!
//! Outside a transaction the walk runs in its own REPEATABLE READ READ ONLY transaction, so
//! the runs and the events are read from one snapshot even while a sync appends.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{Connection, PgConnection, Row};
use tracing::instrument;

use crate::canonical::canonical_json;
use crate::error::LedgerError;
use crate::event::EventType;
use crate::hash::{GENESIS_HASH, HashInput, decode_hash, event_hash_bytes};
use crate::read::ChainHead;

/// At most this many run faults are listed (all are counted).
pub const MAX_LISTED_RUN_FAULTS: usize = 100;

/// The outcome of walking one mailbox's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub mailbox_id: i64,
    /// Rows walked.
    pub events: u64,
    /// The last row walked (its stored seq and hash).
    pub head: Option<ChainHead>,
    /// Runs of this mailbox examined (all statuses).
    pub runs_checked: u64,
    /// Terminal events seen.
    pub terminal_events: u64,
    /// The first faulty row in seq order, with the reason.
    pub first_fault: Option<ChainFault>,
    /// How many rows have a fault (each row counts once, under its first reason).
    pub chain_faults: u64,
    /// Finished runs without exactly one matching terminal event (first
    /// [`MAX_LISTED_RUN_FAULTS`], ordered by run id).
    pub run_faults: Vec<RunFault>,
    /// How many runs have a fault.
    pub run_fault_count: u64,
}

impl ChainReport {
    /// True when the chain and every run check out.
    pub fn is_ok(&self) -> bool {
        self.chain_faults == 0 && self.run_fault_count == 0
    }
}

/// A faulty row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainFault {
    pub seq: i64,
    pub reason: FaultReason,
}

impl fmt::Display for ChainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

/// Why a row is faulty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultReason {
    /// Seqs between `expected` and this row's seq are missing.
    SeqGap { expected: i64 },
    /// prev_hash is not the previous row's hash.
    BrokenLink {
        expected_prev: String,
        stored_prev: String,
    },
    /// The row's columns no longer hash to its stored hash: it was altered.
    HashMismatch { computed: String, stored: String },
    /// The row's run belongs to another mailbox (or does not exist).
    ForeignRun { run_id: i64 },
    /// A second terminal event for a run.
    DuplicateTerminal { run_id: i64, first_seq: i64 },
    /// The row cannot be hashed (unknown type, malformed hash or payload).
    Malformed { detail: String },
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultReason::SeqGap { expected } => write!(f, "gap in seq: expected {expected}"),
            FaultReason::BrokenLink {
                expected_prev,
                stored_prev,
            } => write!(
                f,
                "broken link: prev_hash {stored_prev} but the previous event's hash is {expected_prev}"
            ),
            FaultReason::HashMismatch { computed, stored } => write!(
                f,
                "altered event: stored hash {stored} but its contents hash to {computed}"
            ),
            FaultReason::ForeignRun { run_id } => {
                write!(f, "run {run_id} is not a run of this mailbox")
            }
            FaultReason::DuplicateTerminal { run_id, first_seq } => write!(
                f,
                "second terminal event for run {run_id} (first at seq {first_seq})"
            ),
            FaultReason::Malformed { detail } => write!(f, "malformed event: {detail}"),
        }
    }
}

/// A finished run whose terminal event is missing or disagrees with its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunFault {
    pub run_id: i64,
    pub status: String,
    pub reason: RunFaultReason,
}

impl fmt::Display for RunFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {} ({}): {}", self.run_id, self.status, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunFaultReason {
    /// The run is finished but no terminal event records how.
    NoTerminalEvent,
    /// The terminal event says something other than the run's status.
    TerminalMismatch { seq: i64, event_type: String },
}

impl fmt::Display for RunFaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunFaultReason::NoTerminalEvent => f.write_str("finished without a terminal event"),
            RunFaultReason::TerminalMismatch { seq, event_type } => {
                write!(f, "terminal event at seq {seq} is {event_type}")
            }
        }
    }
}

/// What the walk tracks per run.
pub(crate) struct RunState {
    pub(crate) status: String,
    pub(crate) terminal: Option<(i64, EventType)>,
}

/// Walk `mailbox_id`'s chain and check it (see the module docs for what is checked).
/// Faults are reported, not returned as errors; errors mean the walk itself failed.
#[instrument(skip_all, fields(mailbox_id = mailbox_id))]
pub async fn verify(conn: &mut PgConnection, mailbox_id: i64) -> Result<ChainReport, LedgerError> {
    if conn.is_in_transaction() {
        return verify_in(conn, mailbox_id).await;
    }
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    let report = verify_in(&mut tx, mailbox_id).await?;
    tx.rollback().await?;
    Ok(report)
}

async fn verify_in(conn: &mut PgConnection, mailbox_id: i64) -> Result<ChainReport, LedgerError> {
    let mut runs = BTreeMap::new();
    for row in sqlx::query("SELECT id, status FROM sync_runs WHERE mailbox_id = $1")
        .bind(mailbox_id)
        .fetch_all(&mut *conn)
        .await?
    {
        runs.insert(
            row.try_get::<i64, _>(0)?,
            RunState {
                status: row.try_get(1)?,
                terminal: None,
            },
        );
    }

    let mut walk = Walk::new(mailbox_id);
    {
        let mut rows = sqlx::query(
            "SELECT seq, run_id, event_type, subject_key, payload::text, created_at, prev_hash, hash \
             FROM ledger_events WHERE mailbox_id = $1 ORDER BY seq",
        )
        .bind(mailbox_id)
        .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let stored = StoredRow {
                seq: row.try_get(0)?,
                run_id: row.try_get(1)?,
                event_type: row.try_get(2)?,
                subject_key: row.try_get(3)?,
                payload: row.try_get(4)?,
                created_at: row.try_get(5)?,
                prev_hash: row.try_get(6)?,
                hash: row.try_get(7)?,
            };
            walk.step(&stored, &mut runs);
        }
    }
    Ok(walk.report(runs))
}

/// One row as stored, borrowed from the database row.
pub(crate) struct StoredRow<'r> {
    pub(crate) seq: i64,
    pub(crate) run_id: i64,
    pub(crate) event_type: &'r str,
    pub(crate) subject_key: &'r str,
    pub(crate) payload: &'r str,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) prev_hash: &'r str,
    pub(crate) hash: &'r str,
}

/// The state of the walk between rows.
pub(crate) struct Walk {
    mailbox_id: i64,
    events: u64,
    terminal_events: u64,
    last_seq: i64,
    last_hash: [u8; 32],
    head: Option<ChainHead>,
    first_fault: Option<ChainFault>,
    chain_faults: u64,
}

impl Walk {
    pub(crate) fn new(mailbox_id: i64) -> Walk {
        Walk {
            mailbox_id,
            events: 0,
            terminal_events: 0,
            last_seq: 0,
            last_hash: [0; 32],
            head: None,
            first_fault: None,
            chain_faults: 0,
        }
    }

    /// The report once every row was walked: the chain's findings, then each finished
    /// run's terminal event checked against its status.
    pub(crate) fn report(self, runs: BTreeMap<i64, RunState>) -> ChainReport {
        let mut report = self.finish();
        report.runs_checked = runs.len() as u64;
        for (run_id, run) in runs {
            let reason = match (run.status.as_str(), run.terminal) {
                ("running", _) => None,
                (_, None) => Some(RunFaultReason::NoTerminalEvent),
                (status, Some((seq, t))) if t.run_status() != Some(status) => {
                    Some(RunFaultReason::TerminalMismatch {
                        seq,
                        event_type: t.as_str().to_owned(),
                    })
                }
                _ => None,
            };
            if let Some(reason) = reason {
                report.run_fault_count += 1;
                if report.run_faults.len() < MAX_LISTED_RUN_FAULTS {
                    report.run_faults.push(RunFault {
                        run_id,
                        status: run.status,
                        reason,
                    });
                }
            }
        }
        report
    }

    pub(crate) fn step(&mut self, row: &StoredRow<'_>, runs: &mut BTreeMap<i64, RunState>) {
        self.events += 1;
        let fault = self.check(row, runs);
        // Continue from what is stored, so one altered row is one fault, not a cascade.
        self.last_seq = row.seq;
        self.last_hash = decode_hash(row.hash).unwrap_or([0xff; 32]);
        self.head = Some(ChainHead {
            seq: row.seq,
            hash: row.hash.to_owned(),
        });
        if let Some(reason) = fault {
            self.chain_faults += 1;
            if self.first_fault.is_none() {
                self.first_fault = Some(ChainFault {
                    seq: row.seq,
                    reason,
                });
            }
        }
    }

    /// The first thing wrong with `row`, if anything. Run bookkeeping happens regardless.
    fn check(
        &mut self,
        row: &StoredRow<'_>,
        runs: &mut BTreeMap<i64, RunState>,
    ) -> Option<FaultReason> {
        let event_type = row.event_type.parse::<EventType>().ok();
        let run_fault = self.track_run(row, event_type, runs);

        let expected = self.last_seq + 1;
        if row.seq != expected {
            return Some(FaultReason::SeqGap { expected });
        }
        let Ok(prev) = decode_hash(row.prev_hash) else {
            return Some(malformed("prev_hash is not 64 lowercase hex digits"));
        };
        if prev != self.last_hash {
            return Some(FaultReason::BrokenLink {
                expected_prev: if self.last_seq == 0 {
                    GENESIS_HASH.to_owned()
                } else {
                    hex::encode(self.last_hash)
                },
                stored_prev: row.prev_hash.to_owned(),
            });
        }
        let Some(event_type) = event_type else {
            return Some(malformed(&format!(
                "unknown event type {:?}",
                row.event_type
            )));
        };
        let payload = match serde_json::from_str::<serde_json::Value>(row.payload)
            .map_err(|e| e.to_string())
            .and_then(|v| canonical_json(&v).map_err(|p| p.to_string()))
        {
            Ok(p) => p,
            Err(e) => return Some(malformed(&format!("payload: {e}"))),
        };
        let computed = event_hash_bytes(
            &prev,
            &HashInput {
                mailbox_id: self.mailbox_id,
                seq: row.seq,
                run_id: row.run_id,
                event_type: event_type.as_str(),
                subject_key: row.subject_key,
                payload_canonical: &payload,
                created_at_micros: row.created_at.timestamp_micros(),
            },
        );
        if decode_hash(row.hash).ok() != Some(computed) {
            return Some(FaultReason::HashMismatch {
                computed: hex::encode(computed),
                stored: row.hash.to_owned(),
            });
        }
        run_fault
    }

    fn track_run(
        &mut self,
        row: &StoredRow<'_>,
        event_type: Option<EventType>,
        runs: &mut BTreeMap<i64, RunState>,
    ) -> Option<FaultReason> {
        let Some(run) = runs.get_mut(&row.run_id) else {
            return Some(FaultReason::ForeignRun { run_id: row.run_id });
        };
        let t = event_type.filter(|t| t.is_terminal())?;
        self.terminal_events += 1;
        match run.terminal {
            Some((first_seq, _)) => Some(FaultReason::DuplicateTerminal {
                run_id: row.run_id,
                first_seq,
            }),
            None => {
                run.terminal = Some((row.seq, t));
                None
            }
        }
    }

    fn finish(self) -> ChainReport {
        ChainReport {
            mailbox_id: self.mailbox_id,
            events: self.events,
            head: self.head,
            runs_checked: 0,
            terminal_events: self.terminal_events,
            first_fault: self.first_fault,
            chain_faults: self.chain_faults,
            run_faults: Vec::new(),
            run_fault_count: 0,
        }
    }
}

fn malformed(detail: &str) -> FaultReason {
    FaultReason::Malformed {
        detail: detail.to_owned(),
    }
}
