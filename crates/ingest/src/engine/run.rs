//! The run lease: one live run per mailbox, recorded in `sync_runs`.
//!
//! Exclusivity is a session-level advisory lock held on a dedicated connection
//! for the whole run. Postgres drops it the moment the process dies, so after a
//! crash or `kill -9` the next run starts at once and marks the dead run
//! interrupted. The heartbeat is the fallback for a process that hangs while
//! alive: a holder whose heartbeat is older than the lease is terminated and
//! its run taken over. The partial unique index `sync_runs_one_running` backs
//! all of this up in the schema.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger::{EventType, NewEvent};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tracing::{info, instrument, warn};

use super::{EngineError, Window};

/// First half of the run lock's key: ASCII "MRUN" (the ledger uses "LEDG").
pub const RUN_LOCK_CLASS: i32 = 0x4D52_554E;

/// How often a live run proves it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// What kind of run this is (`sync_runs.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Backfill,
    Sync,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Backfill => "backfill",
            RunKind::Sync => "sync",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Completed,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    fn event_type(self) -> EventType {
        match self {
            RunStatus::Completed => EventType::SyncCompleted,
            RunStatus::Failed => EventType::SyncFailed,
            RunStatus::Interrupted => EventType::SyncInterrupted,
        }
    }
}

/// What the end of a run does to the mailbox's history cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorUpdate {
    /// Leave it alone.
    Keep,
    /// Set it only where the mailbox has none yet (a backfill: an existing
    /// cursor is older and replaying from it is idempotent, while jumping it
    /// forward would skip changes to mail outside the window).
    IfAbsent(u64),
    /// Set it (a fallback backfill after expired history).
    Replace(u64),
}

fn lock_key(mailbox_id: i64) -> i32 {
    // Fold to 32 bits: ids sharing a folded key only share a lock.
    (mailbox_id ^ (mailbox_id >> 32)) as i32
}

/// A held run: the lock connection, the `sync_runs` row and its heartbeat.
pub struct RunLease {
    lock_conn: Option<PgConnection>,
    pool: PgPool,
    pub run_id: i64,
    pub mailbox_id: i64,
    heartbeat: JoinHandle<()>,
}

impl RunLease {
    /// Takes the mailbox for a new run, or reports who holds it.
    #[instrument(skip_all, fields(mailbox_id))]
    pub async fn acquire(
        pool: &PgPool,
        mailbox_id: i64,
        mailbox: &str,
        kind: RunKind,
        window: Option<Window>,
        start_history_id: Option<u64>,
        lease: Duration,
    ) -> Result<RunLease, EngineError> {
        let mut lock_conn = PgConnection::connect_with(&pool.connect_options())
            .await
            .map_err(EngineError::db("open run lock connection"))?;
        if !try_lock(&mut lock_conn, mailbox_id).await? {
            take_over_if_hung(pool, &mut lock_conn, mailbox_id, mailbox, lease).await?;
        }

        let mut tx = pool.begin().await.map_err(EngineError::db("begin run"))?;
        // We hold the lock, so any run still marked running has lost its process.
        let dead: Vec<i64> = sqlx::query_scalar(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = now(),
                    error = coalesce(error, 'the process running it stopped without finishing')
             WHERE mailbox_id = $1 AND status = 'running' RETURNING id",
        )
        .bind(mailbox_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(EngineError::db("mark dead runs interrupted"))?;
        for run_id in &dead {
            warn!(run_id, "previous run found dead; marked interrupted");
            ledger::append_terminal(
                &mut tx,
                mailbox_id,
                *run_id,
                NewEvent::new(
                    EventType::SyncInterrupted,
                    format!("run:{run_id}"),
                    json!({"reason": "process stopped without finishing"}),
                ),
            )
            .await?;
        }

        let host = std::env::var("HOSTNAME").ok();
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (mailbox_id, kind, window_start, window_end, start_history_id, host, pid)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(mailbox_id)
        .bind(kind.as_str())
        .bind(window.map(|w| w.since))
        .bind(window.map(|w| w.until))
        .bind(start_history_id.map(history_i64).transpose()?)
        .bind(host)
        .bind(std::process::id() as i32)
        .fetch_one(&mut *tx)
        .await
        .map_err(EngineError::db("insert run"))?;
        ledger::append(
            &mut tx,
            mailbox_id,
            run_id,
            &[NewEvent::new(
                EventType::SyncStarted,
                format!("run:{run_id}"),
                json!({
                    "kind": kind.as_str(),
                    "window": window,
                    "start_history_id": start_history_id.map(|h| h.to_string()),
                }),
            )],
        )
        .await?;
        tx.commit()
            .await
            .map_err(EngineError::db("commit run start"))?;
        info!(run_id, kind = kind.as_str(), "run started");

        let heartbeat = tokio::spawn(heartbeat(pool.clone(), run_id));
        Ok(RunLease {
            lock_conn: Some(lock_conn),
            pool: pool.clone(),
            run_id,
            mailbox_id,
            heartbeat,
        })
    }

    /// Records progress counts on the run row (for `status` while it runs).
    pub(crate) async fn record_counts(&self, counts: &super::Tally) -> Result<(), EngineError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(EngineError::db("acquire"))?;
        self.record_counts_in(&mut conn, counts).await
    }

    /// The same, inside the transaction that committed them.
    pub(crate) async fn record_counts_in(
        &self,
        conn: &mut PgConnection,
        counts: &super::Tally,
    ) -> Result<(), EngineError> {
        sqlx::query("UPDATE sync_runs SET counts = $2, heartbeat_at = now() WHERE id = $1")
            .bind(self.run_id)
            .bind(serde_json::to_value(counts).unwrap_or_default())
            .execute(conn)
            .await
            .map_err(EngineError::db("record run counts"))?;
        Ok(())
    }

    /// Ends the run: status, counts, terminal ledger event and cursor in one
    /// transaction, then releases the mailbox.
    #[instrument(skip_all, fields(run_id = self.run_id))]
    pub async fn finish(
        mut self,
        status: RunStatus,
        counts: serde_json::Value,
        error: Option<String>,
        cursor: CursorUpdate,
    ) -> Result<(), EngineError> {
        self.heartbeat.abort();
        let end_history_id = match cursor {
            CursorUpdate::Keep => None,
            CursorUpdate::IfAbsent(h) | CursorUpdate::Replace(h) => Some(history_i64(h)?),
        };
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(EngineError::db("begin run end"))?;
        sqlx::query(
            "UPDATE sync_runs SET status = $2, finished_at = now(), heartbeat_at = now(),
                    counts = $3, error = $4, end_history_id = coalesce($5, end_history_id)
             WHERE id = $1",
        )
        .bind(self.run_id)
        .bind(status.as_str())
        .bind(&counts)
        .bind(&error)
        .bind(end_history_id)
        .execute(&mut *tx)
        .await
        .map_err(EngineError::db("finish run"))?;
        ledger::append_terminal(
            &mut tx,
            self.mailbox_id,
            self.run_id,
            NewEvent::new(
                status.event_type(),
                format!("run:{}", self.run_id),
                json!({"counts": counts, "error": error}),
            ),
        )
        .await?;
        let cursor_sql = match cursor {
            CursorUpdate::Keep => None,
            CursorUpdate::IfAbsent(_) => Some(
                "UPDATE mailboxes SET history_id = $2, history_id_updated_at = now(), updated_at = now()
                 WHERE id = $1 AND history_id IS NULL",
            ),
            CursorUpdate::Replace(_) => Some(
                "UPDATE mailboxes SET history_id = $2, history_id_updated_at = now(), updated_at = now()
                 WHERE id = $1",
            ),
        };
        if let (Some(sql), Some(h)) = (cursor_sql, end_history_id) {
            sqlx::query(sql)
                .bind(self.mailbox_id)
                .bind(h)
                .execute(&mut *tx)
                .await
                .map_err(EngineError::db("store history cursor"))?;
        }
        tx.commit()
            .await
            .map_err(EngineError::db("commit run end"))?;
        info!(status = status.as_str(), "run finished");
        // Closing the connection releases the advisory lock.
        if let Some(conn) = self.lock_conn.take() {
            let _ = conn.close().await;
        }
        Ok(())
    }
}

impl Drop for RunLease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Gmail historyIds are u64; ours live in bigint columns.
pub(crate) fn history_i64(h: u64) -> Result<i64, EngineError> {
    i64::try_from(h).map_err(|_| EngineError::Internal(format!("historyId {h} exceeds 2^63")))
}

async fn try_lock(conn: &mut PgConnection, mailbox_id: i64) -> Result<bool, EngineError> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(RUN_LOCK_CLASS)
        .bind(lock_key(mailbox_id))
        .fetch_one(conn)
        .await
        .map_err(EngineError::db("take run lock"))
}

/// The lock is held. Report the live run, unless its heartbeat is older than
/// the lease: then its process is alive but hung, and is terminated so this
/// run can take over.
async fn take_over_if_hung(
    pool: &PgPool,
    lock_conn: &mut PgConnection,
    mailbox_id: i64,
    mailbox: &str,
    lease: Duration,
) -> Result<(), EngineError> {
    // The holder takes the lock before it inserts its run row: give a run
    // that is starting a moment to appear, so the message can name it.
    let mut live: Option<(i64, DateTime<Utc>, f64)> = None;
    for _ in 0..30 {
        live = sqlx::query_as(
            "SELECT id, heartbeat_at, extract(epoch FROM now() - heartbeat_at)::float8
             FROM sync_runs WHERE mailbox_id = $1 AND status = 'running'",
        )
        .bind(mailbox_id)
        .fetch_optional(pool)
        .await
        .map_err(EngineError::db("read live run"))?;
        if live.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some((run_id, _, age)) = live else {
        // Held but no row yet: another run is starting right now.
        return Err(EngineError::Locked {
            mailbox: mailbox.to_owned(),
            run_id: None,
            heartbeat_age_secs: 0,
        });
    };
    if age < lease.as_secs_f64() {
        return Err(EngineError::Locked {
            mailbox: mailbox.to_owned(),
            run_id: Some(run_id),
            heartbeat_age_secs: age as i64,
        });
    }
    warn!(
        run_id,
        heartbeat_age_secs = age as i64,
        "live run missed its lease; taking over"
    );
    // Advisory locks are per database, but pg_locks shows the whole cluster: without
    // the database filter this would terminate the holder of the same mailbox id in
    // another mailingest database on the same server.
    let holders: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 2
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND classid = ($1::bigint & 4294967295)::oid AND objid = ($2::bigint & 4294967295)::oid",
    )
    .bind(RUN_LOCK_CLASS)
    .bind(lock_key(mailbox_id))
    .fetch_all(pool)
    .await
    .map_err(EngineError::db("find run lock holder"))?;
    for pid in holders {
        let _ = sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(pool)
            .await;
    }
    for _ in 0..50 {
        if try_lock(lock_conn, mailbox_id).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(EngineError::Locked {
        mailbox: mailbox.to_owned(),
        run_id: Some(run_id),
        heartbeat_age_secs: age as i64,
    })
}

async fn heartbeat(pool: PgPool, run_id: i64) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(err) = sqlx::query(
            "UPDATE sync_runs SET heartbeat_at = now() WHERE id = $1 AND status = 'running'",
        )
        .bind(run_id)
        .execute(&pool)
        .await
        {
            warn!(run_id, error = %err, "heartbeat failed");
        }
    }
}
