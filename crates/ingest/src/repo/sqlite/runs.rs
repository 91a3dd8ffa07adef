//! SQLite: the run lease — one live run per mailbox, fenced, without a server.
//!
//! SQLite has no advisory locks, so exclusivity is built from two parts:
//!
//! * **The fence** is the same as on PostgreSQL: the run's `sync_runs` row
//!   must still be `running`, checked at the start of every write transaction
//!   ([`prove_lease`]). Every write transaction begins `IMMEDIATE`, taking
//!   SQLite's single write lock before that check, so nothing can end the run
//!   between the check and the commit. The partial unique index
//!   `sync_runs_one_running` keeps a second running row from ever existing.
//! * **Liveness** is a lock file per run (`connect::Locks`), named by a random
//!   token stored in the run's row and taken before the row is inserted. The
//!   operating system drops it when the process dies. A run starting finds
//!   the mailbox's running row inside its own `IMMEDIATE` transaction and
//!   decides there: its lock free → its process is gone (a crash, `kill -9`):
//!   interrupted at once, as on PostgreSQL; its lock held and its heartbeat
//!   fresh → `Locked` (exit 75); held but silent past the lease → a hung
//!   process, taken over (interrupted, so its next transaction is fenced out).
//!   Every run holds a lock of its own, a run that took over included.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::{EventType, NewEvent, Subject};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{SqliteConnection, SqlitePool};
use tracing::{info, warn};

use super::connect::{HeldLock, Locks};
use super::tx::SqliteTx;
use super::{begin_immediate, now};
use crate::domain::RunStatus;
use crate::repo::{CursorUpdate, Fence, HeldRun, RepoError, RepoTx, RunEnd, RunStart, as_i64};

/// A token no other run has: 32 hex digits.
fn new_token(mailbox_id: i64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}/{}/{mailbox_id}/{:?}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

/// Fails with `LeaseLost` unless the fence's run is still the mailbox's
/// running run. The caller's transaction holds the write lock (IMMEDIATE),
/// so the answer holds until it commits.
pub(crate) async fn prove_lease(
    conn: &mut SqliteConnection,
    fence: Fence,
) -> Result<(), RepoError> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM sync_runs WHERE id = ?1 AND mailbox_id = ?2 AND status = 'running'",
    )
    .bind(fence.run_id)
    .bind(fence.mailbox_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(RepoError::db("prove run lease"))?;
    match held {
        Some(_) => Ok(()),
        None => Err(RepoError::LeaseLost {
            run_id: fence.run_id,
        }),
    }
}

pub(crate) async fn start_run(
    pool: &SqlitePool,
    locks: &Locks,
    start: &RunStart,
) -> Result<HeldRun, RepoError> {
    let mailbox_id = start.mailbox_id;
    let token = new_token(mailbox_id);
    let lock: HeldLock = locks.hold_run(&token)?;

    let mut tx = begin_immediate(pool, "begin run").await?;
    let running: Option<(i64, DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "SELECT id, heartbeat_at, lock_token FROM sync_runs
         WHERE mailbox_id = ?1 AND status = 'running'",
    )
    .bind(mailbox_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(RepoError::db("read live run"))?;
    let mut dead_token = None;
    if let Some((run_id, heartbeat, holder)) = running {
        let alive = match &holder {
            Some(t) => locks.run_is_held(t)?,
            None => false,
        };
        let age = (now() - heartbeat).as_seconds_f64().max(0.0);
        if alive && age < start.stale_after.as_secs_f64() {
            return Err(RepoError::Locked {
                run_id: Some(run_id),
                heartbeat_age_secs: age as i64,
            });
        }
        if alive {
            warn!(
                run_id,
                heartbeat_age_secs = age as i64,
                "live run missed its lease; taking over"
            );
        } else {
            warn!(run_id, "previous run found dead; marked interrupted");
            dead_token = holder;
        }
        sqlx::query(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = ?2,
                    error = coalesce(error, 'the process running it stopped without finishing')
             WHERE id = ?1 AND status = 'running'",
        )
        .bind(run_id)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("mark dead runs interrupted"))?;
        ledger::sqlite::append_terminal(
            &mut tx,
            mailbox_id,
            run_id,
            NewEvent::new(
                EventType::SyncInterrupted,
                Subject::Run(run_id),
                json!({"reason": "process stopped without finishing"}),
            ),
        )
        .await?;
    }

    let start_history_id = start
        .start_history_id
        .map(|h| as_i64("historyId", h.0))
        .transpose()?;
    let started = now();
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO sync_runs (mailbox_id, kind, window_start, window_end, start_history_id,
                                host, pid, started_at, heartbeat_at, lock_token)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9) RETURNING id",
    )
    .bind(mailbox_id)
    .bind(start.kind.as_str())
    .bind(start.window.map(|w| w.since))
    .bind(start.window.map(|w| w.until))
    .bind(start_history_id)
    .bind(std::env::var("HOSTNAME").ok())
    .bind(std::process::id() as i64)
    .bind(started)
    .bind(&token)
    .fetch_one(&mut *tx)
    .await
    .map_err(RepoError::db("insert run"))?;
    ledger::sqlite::append(
        &mut tx,
        mailbox_id,
        run_id,
        &[NewEvent::new(
            EventType::SyncStarted,
            Subject::Run(run_id),
            json!({
                "kind": start.kind.as_str(),
                "window": start.window,
                "start_history_id": start.start_history_id.map(|h| h.to_string()),
            }),
        )],
    )
    .await?;
    tx.commit()
        .await
        .map_err(RepoError::db("commit run start"))?;
    if let Some(t) = dead_token {
        locks.forget_run(&t);
    }
    info!(run_id, kind = start.kind.as_str(), "run started");
    Ok(HeldRun {
        fence: Fence { run_id, mailbox_id },
        hold: Box::new(lock),
    })
}

pub(crate) async fn record_counts(
    conn: &mut SqliteConnection,
    fence: Fence,
    counts: &serde_json::Value,
) -> Result<(), RepoError> {
    sqlx::query("UPDATE sync_runs SET counts = ?2, heartbeat_at = ?3 WHERE id = ?1")
        .bind(fence.run_id)
        .bind(counts.to_string())
        .bind(now())
        .execute(conn)
        .await
        .map_err(RepoError::db("record run counts"))?;
    Ok(())
}

/// Moves the cursor forward only: an older value than the stored one is ignored.
pub(crate) async fn advance_cursor(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    cursor: i64,
    only_if_absent: bool,
) -> Result<(), RepoError> {
    sqlx::query(
        "UPDATE mailboxes SET history_id = ?2, history_id_updated_at = ?4, updated_at = ?4
         WHERE id = ?1
           AND (history_id IS NULL OR (NOT ?3 AND history_id < ?2))",
    )
    .bind(mailbox_id)
    .bind(cursor)
    .bind(only_if_absent)
    .bind(now())
    .execute(conn)
    .await
    .map_err(RepoError::db("advance cursor"))?;
    Ok(())
}

pub(crate) async fn finish_run(
    pool: &SqlitePool,
    run: &mut HeldRun,
    end: &RunEnd,
) -> Result<(), RepoError> {
    let Fence { run_id, mailbox_id } = run.fence;
    let end_history_id = match end.cursor {
        CursorUpdate::Keep => None,
        CursorUpdate::IfAbsent(h) | CursorUpdate::Advance(h) | CursorUpdate::Rewind(h) => {
            Some(as_i64("historyId", h.0)?)
        }
    };
    let Some(event_type) = end.status.terminal_event() else {
        return Err(RepoError::Corrupt(format!(
            "run {run_id} cannot finish as {}",
            RunStatus::Running
        )));
    };
    let mut tx = begin_immediate(pool, "begin run end").await?;
    let ended = sqlx::query(
        "UPDATE sync_runs SET status = ?2, finished_at = ?6, heartbeat_at = ?6,
                counts = ?3, error = ?4, end_history_id = coalesce(?5, end_history_id)
         WHERE id = ?1 AND status = 'running'",
    )
    .bind(run_id)
    .bind(end.status.as_str())
    .bind(end.counts.to_string())
    .bind(&end.error)
    .bind(end_history_id)
    .bind(now())
    .execute(&mut *tx)
    .await
    .map_err(RepoError::db("finish run"))?
    .rows_affected();
    if ended == 0 {
        // Ended already: by this very finish (a retry), or by a run that took over.
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = ?1")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(RepoError::db("read run status"))?;
        if status.as_deref() == Some(end.status.as_str()) && finished_by_us(&mut tx, run_id).await?
        {
            return Ok(());
        }
        return Err(RepoError::LeaseLost { run_id });
    }
    ledger::sqlite::append_terminal(
        &mut tx,
        mailbox_id,
        run_id,
        NewEvent::new(
            event_type,
            Subject::Run(run_id),
            json!({"counts": end.counts, "error": end.error}),
        ),
    )
    .await?;
    if let Some(h) = end_history_id {
        if matches!(end.cursor, CursorUpdate::Rewind(_)) {
            rewind_cursor(&mut tx, mailbox_id, h).await?;
        } else {
            let only_if_absent = matches!(end.cursor, CursorUpdate::IfAbsent(_));
            advance_cursor(&mut tx, mailbox_id, h, only_if_absent).await?;
        }
    }
    tx.commit().await.map_err(RepoError::db("commit run end"))?;
    info!(run_id, status = end.status.as_str(), "run finished");
    // Removing and closing the run's lock file: the run is over.
    drop(std::mem::replace(&mut run.hold, Box::new(())));
    Ok(())
}

/// Sets the cursor behind where it is, and records when (see
/// [`CursorUpdate::Rewind`]).
async fn rewind_cursor(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    cursor: i64,
) -> Result<(), RepoError> {
    sqlx::query(
        "UPDATE mailboxes SET history_id = ?2, history_id_updated_at = ?3,
                history_rewound_at = ?3, updated_at = ?3
         WHERE id = ?1",
    )
    .bind(mailbox_id)
    .bind(cursor)
    .bind(now())
    .execute(conn)
    .await
    .map_err(RepoError::db("rewind cursor"))?;
    Ok(())
}

/// Whether the run's terminal event was written by its own finish (a run
/// taken over gets `sync.interrupted` with a reason, never counts).
async fn finished_by_us(conn: &mut SqliteConnection, run_id: i64) -> Result<bool, RepoError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM ledger_events
                        WHERE run_id = ?1 AND json_type(payload, '$.counts') IS NOT NULL
                          AND event_type IN ('sync.completed', 'sync.failed', 'sync.interrupted'))",
    )
    .bind(run_id)
    .fetch_one(conn)
    .await
    .map_err(RepoError::db("read run end"))
}

#[async_trait]
impl crate::repo::Runs for super::SqliteRepository {
    async fn start_run(&self, start: &RunStart) -> Result<HeldRun, RepoError> {
        self.file.check(&self.path)?;
        start_run(&self.pool, &self.locks, start).await
    }

    async fn heartbeat(&self, fence: Fence) -> Result<bool, RepoError> {
        let pool = &self.pool;
        let n = sqlx::query(
            "UPDATE sync_runs SET heartbeat_at = ?2 WHERE id = ?1 AND status = 'running'",
        )
        .bind(fence.run_id)
        .bind(now())
        .execute(pool)
        .await
        .map_err(RepoError::db("heartbeat"))?
        .rows_affected();
        Ok(n > 0)
    }

    async fn finish_run(&self, run: &mut HeldRun, end: &RunEnd) -> Result<(), RepoError> {
        self.file.check(&self.path)?;
        finish_run(&self.pool, run, end).await
    }

    async fn begin(&self, fence: Fence) -> Result<Box<dyn RepoTx>, RepoError> {
        self.file.check(&self.path)?;
        let mut tx = begin_immediate(&self.pool, "begin").await?;
        prove_lease(&mut tx, fence).await?;
        Ok(Box::new(SqliteTx { tx, fence }))
    }
}
