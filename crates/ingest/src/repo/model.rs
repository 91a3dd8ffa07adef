//! Backend-neutral values of runs and mailboxes: what the engines, the worker
//! and the CLI exchange with the repository to open, fence and end a run and
//! to read a mailbox's state. The run's kind and status are `domain` values.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{RunKind, RunStatus, Window};

/// A Gmail historyId: the position in a mailbox's change history that a sync
/// resumes from. Gmail sends u64; stored values fit a signed 64-bit column,
/// and a backend rejects anything larger instead of wrapping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct HistoryCursor(pub u64);

impl fmt::Display for HistoryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the end of a run does to the mailbox's history cursor. Either way the
/// cursor only moves forward: a backend never writes one older than it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorUpdate {
    /// Leave it alone.
    Keep,
    /// Set it only where the mailbox has none yet (a backfill: an existing
    /// cursor is older and replaying from it is idempotent, while jumping it
    /// forward would skip changes to mail outside the window).
    IfAbsent(HistoryCursor),
    /// Move it forward to this point (a fallback backfill after expired history).
    Advance(HistoryCursor),
    /// Set it to this point even though it is behind the stored one: Gmail's
    /// history went backwards (a restored or re-created mailbox), and the
    /// stored cursor would never see a change again. Recorded on the mailbox
    /// (`history_rewound_at`), which stays degraded until a clean
    /// `verify --full`.
    Rewind(HistoryCursor),
}

/// The proof a run presents with every write: its run id and mailbox. A
/// backend accepts a transaction under a fence only while that run still owns
/// the mailbox, checked inside the transaction itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub run_id: i64,
    pub mailbox_id: i64,
}

/// What the repository needs to open a run.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub mailbox_id: i64,
    pub kind: RunKind,
    pub window: Option<Window>,
    pub start_history_id: Option<HistoryCursor>,
    /// A live run whose heartbeat is older than this is taken over.
    pub stale_after: Duration,
}

/// A run this process holds. `hold` is the backend's exclusivity (for
/// PostgreSQL, the connection holding the advisory lock); dropping it lets
/// another run take the mailbox.
pub struct HeldRun {
    pub fence: Fence,
    pub(crate) hold: Box<dyn std::any::Any + Send>,
}

impl fmt::Debug for HeldRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldRun")
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

/// How a run ends, as recorded on its row and in its terminal event.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: RunStatus,
    pub counts: serde_json::Value,
    pub error: Option<String>,
    pub cursor: CursorUpdate,
}

/// A mailbox as `mailbox list` and the worker see it (read as is by both
/// backends: the columns have these names).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MailboxRow {
    pub id: i64,
    pub org_id: String,
    pub provider_email: String,
    pub enabled: bool,
    pub history_id: Option<i64>,
    pub history_id_updated_at: Option<DateTime<Utc>>,
    pub sync_interval_secs: i32,
    pub next_sync_at: DateTime<Utc>,
    pub consecutive_failures: i32,
    pub last_error: Option<String>,
    /// When a sync last found Gmail's historyId behind the stored cursor and
    /// started over from Gmail's (see [`Degraded::HistoryRewound`]).
    pub history_rewound_at: Option<DateTime<Utc>>,
}

/// One line of `mailingest status`.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxStatus {
    #[serde(flatten)]
    pub mailbox: MailboxRow,
    pub cursor_age_secs: Option<f64>,
    pub messages: i64,
    pub messages_deleted: i64,
    pub threads: i64,
    pub attachments: i64,
    /// Messages in quarantine (see `repo::quarantine`), and of those, how
    /// many no run retries any more.
    pub quarantined: i64,
    pub quarantine_given_up: i64,
    /// Gmail quota units the mailbox's runs spent on the current quota day
    /// (since midnight Pacific time), as recorded when each run finished.
    pub quota_units_today: i64,
    /// When a run of the mailbox last completed.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last scheduled completeness check: when, and what it found.
    pub last_verify_at: Option<DateTime<Utc>>,
    pub last_verify_ok: Option<bool>,
    pub last_verify_findings: Option<Vec<String>>,
    // The last run, flat: `status --json` keeps the shape scripts read.
    pub last_run_id: Option<i64>,
    pub last_run_kind: Option<RunKind>,
    pub last_run_status: Option<RunStatus>,
    pub last_run_started_at: Option<DateTime<Utc>>,
    pub last_run_finished_at: Option<DateTime<Utc>>,
    pub last_run_heartbeat_age_secs: Option<f64>,
    pub last_run_error: Option<String>,
    pub last_run_counts: Option<serde_json::Value>,
}

/// No completed run for this long and Gmail's history (kept about a week)
/// may expire under the cursor, forcing a fallback backfill.
pub const HISTORY_EXPIRY_WARNING: Duration = Duration::from_secs(6 * 86_400);
/// Failed runs in a row that make a mailbox degraded.
pub const FAILURES_DEGRADED: i32 = 3;

/// Why a mailbox needs an operator's eye (`status`, `status --check`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Degraded {
    /// Messages are quarantined (see `status --quarantined`).
    Quarantined { messages: i64, given_up: i64 },
    /// The cursor exists but no run completed for a while: history may expire.
    CursorNearExpiry { days_since_success: f64 },
    /// Its last runs failed.
    Failing { consecutive_failures: i32 },
    /// Gmail's historyId went behind the stored cursor (the mailbox restored
    /// or re-created at Google, or the address now another account's): the
    /// sync started over from Gmail's cursor after backing up the fallback
    /// window. Until a completeness check passes after it, the archive may
    /// hold mail of the mailbox's earlier life, or miss some of this one's.
    HistoryRewound { at: DateTime<Utc> },
    /// Its last completeness check (`verify --full`) found differences.
    VerifyFindings {
        checked_at: DateTime<Utc>,
        findings: Vec<String>,
    },
}

/// The result of one completeness check, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyRun {
    pub ok: bool,
    pub missing_here: u64,
    pub gone_there: u64,
    pub findings: Vec<String>,
}

impl MailboxStatus {
    /// Everything that makes this mailbox degraded at `now` (empty: healthy).
    pub fn degraded(&self, now: DateTime<Utc>) -> Vec<Degraded> {
        let mut out = Vec::new();
        if self.quarantined > 0 {
            out.push(Degraded::Quarantined {
                messages: self.quarantined,
                given_up: self.quarantine_given_up,
            });
        }
        if self.mailbox.history_id.is_some() {
            let since = self
                .last_success_at
                .map_or(f64::INFINITY, |t| (now - t).num_seconds() as f64);
            if since > HISTORY_EXPIRY_WARNING.as_secs_f64() {
                out.push(Degraded::CursorNearExpiry {
                    days_since_success: (since / 86_400.0 * 10.0).round() / 10.0,
                });
            }
        }
        if let Some(at) = self.mailbox.history_rewound_at {
            let checked_since = self.last_verify_ok == Some(true)
                && self.last_verify_at.is_some_and(|checked| checked > at);
            if !checked_since {
                out.push(Degraded::HistoryRewound { at });
            }
        }
        if let (Some(false), Some(at)) = (self.last_verify_ok, self.last_verify_at) {
            out.push(Degraded::VerifyFindings {
                checked_at: at,
                findings: self.last_verify_findings.clone().unwrap_or_default(),
            });
        }
        if self.mailbox.consecutive_failures >= FAILURES_DEGRADED {
            out.push(Degraded::Failing {
                consecutive_failures: self.mailbox.consecutive_failures,
            });
        }
        out
    }
}

/// When a claimed mailbox is due again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextSync<'a> {
    /// It synced: due after its interval (`interval` overrides the mailbox's own).
    AfterSuccess { interval: Option<Duration> },
    /// It failed: the failure is counted and kept, and the next try backs off
    /// exponentially (interval × 2^failures, at most a day).
    AfterFailure {
        error: &'a str,
        interval: Option<Duration>,
    },
    /// Not its turn after all (held elsewhere, interrupted): due again after
    /// `after`, nothing counted.
    Retry { after: Duration },
}

/// Row counts of one mailbox, for `verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxCounts {
    pub threads: i64,
    pub messages: i64,
    pub messages_deleted: i64,
    pub attachments: i64,
    pub blobs: i64,
    pub runs: i64,
    pub ledger_events: i64,
}

/// A natural key found more than once (which the constraints should make impossible).
#[derive(Debug, Clone, Serialize)]
pub struct DuplicateKey {
    pub table: &'static str,
    pub key: String,
    pub count: i64,
}
