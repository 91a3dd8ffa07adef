//! PostgreSQL: the run lease — one live run per mailbox, fenced.
//!
//! Exclusivity at start is a session-level advisory lock held on a dedicated
//! connection for the whole run. Postgres drops it the moment the process
//! dies, so after a crash or `kill -9` the next run starts at once and marks
//! the dead run interrupted. The heartbeat is the fallback for a process that
//! hangs while alive: a holder whose heartbeat is older than the lease is
//! terminated and its run taken over.
//!
//! The lock alone is not enough: its connection can drop (restart, failover,
//! takeover) while the run's pool keeps committing. So every write
//! transaction of a run starts with [`prove_lease`]: its `sync_runs` row must
//! still be `running`, and the row stays locked until the transaction ends.
//! A run taking over marks the old row interrupted with an UPDATE that waits
//! for that lock, so an old transaction either commits before the takeover or
//! finds itself fenced out; the partial unique index `sync_runs_one_running`
//! keeps a second running row from ever existing.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger::{EventType, NewEvent, Subject};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use tracing::{info, warn};

use super::tx::PgTx;
use crate::domain::RunStatus;
use crate::repo::{CursorUpdate, Fence, HeldRun, RepoError, RepoTx, RunEnd, RunStart, as_i64};

/// First half of the run lock's key: ASCII "MRUN" (the ledger uses "LEDG").
pub const RUN_LOCK_CLASS: i32 = 0x4D52_554E;

fn lock_key(mailbox_id: i64) -> i32 {
    // Fold to 32 bits: ids sharing a folded key only share a lock.
    (mailbox_id ^ (mailbox_id >> 32)) as i32
}

/// Fails with `LeaseLost` unless the fence's run is still the mailbox's
/// running run; locks its row until the caller's transaction ends.
pub(crate) async fn prove_lease(conn: &mut PgConnection, fence: Fence) -> Result<(), RepoError> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM sync_runs
         WHERE id = $1 AND mailbox_id = $2 AND status = 'running'
         FOR NO KEY UPDATE",
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

pub(crate) async fn record_counts(
    conn: &mut PgConnection,
    fence: Fence,
    counts: &serde_json::Value,
) -> Result<(), RepoError> {
    sqlx::query("UPDATE sync_runs SET counts = $2, heartbeat_at = now() WHERE id = $1")
        .bind(fence.run_id)
        .bind(counts)
        .execute(conn)
        .await
        .map_err(RepoError::db("record run counts"))?;
    Ok(())
}

/// Moves the cursor forward only: an older value than the stored one is ignored.
pub(crate) async fn advance_cursor(
    conn: &mut PgConnection,
    mailbox_id: i64,
    cursor: i64,
    only_if_absent: bool,
) -> Result<(), RepoError> {
    sqlx::query(
        "UPDATE mailboxes SET history_id = $2, history_id_updated_at = now(), updated_at = now()
         WHERE id = $1
           AND (history_id IS NULL OR (NOT $3 AND history_id < $2))",
    )
    .bind(mailbox_id)
    .bind(cursor)
    .bind(only_if_absent)
    .execute(conn)
    .await
    .map_err(RepoError::db("advance cursor"))?;
    Ok(())
}

/// Sets the cursor behind where it is, and records when (see
/// [`CursorUpdate::Rewind`]).
async fn rewind_cursor(
    conn: &mut PgConnection,
    mailbox_id: i64,
    cursor: i64,
) -> Result<(), RepoError> {
    sqlx::query(
        "UPDATE mailboxes SET history_id = $2, history_id_updated_at = now(),
                history_rewound_at = now(), updated_at = now()
         WHERE id = $1",
    )
    .bind(mailbox_id)
    .bind(cursor)
    .execute(conn)
    .await
    .map_err(RepoError::db("rewind cursor"))?;
    Ok(())
}

/// Whether the run's terminal event was written by its own finish (a run
/// taken over gets `sync.interrupted` from the run that took it, with a
/// reason, never the counts a finish records).
async fn finished_by_us(conn: &mut PgConnection, run_id: i64) -> Result<bool, RepoError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM ledger_events
                        WHERE run_id = $1 AND payload ? 'counts'
                          AND event_type IN ('sync.completed', 'sync.failed', 'sync.interrupted'))",
    )
    .bind(run_id)
    .fetch_one(conn)
    .await
    .map_err(RepoError::db("read run end"))
}

async fn try_lock(conn: &mut PgConnection, mailbox_id: i64) -> Result<bool, RepoError> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(RUN_LOCK_CLASS)
        .bind(lock_key(mailbox_id))
        .fetch_one(conn)
        .await
        .map_err(RepoError::db("take run lock"))
}

/// The lock is held. Report the live run, unless its heartbeat is older than
/// the lease: then its process is alive but hung, and is terminated so this
/// run can take over.
async fn take_over_if_hung(
    pool: &PgPool,
    lock_conn: &mut PgConnection,
    mailbox_id: i64,
    lease: Duration,
) -> Result<(), RepoError> {
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
        .map_err(RepoError::db("read live run"))?;
        if live.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some((run_id, _, age)) = live else {
        // Held but no row yet: another run is starting right now.
        return Err(RepoError::Locked {
            run_id: None,
            heartbeat_age_secs: 0,
        });
    };
    if age < lease.as_secs_f64() {
        return Err(RepoError::Locked {
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
    .map_err(RepoError::db("find run lock holder"))?;
    for pid in holders {
        if let Err(err) = sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(pool)
            .await
        {
            warn!(pid, error = %err, "could not terminate the hung run's lock holder");
        }
    }
    for _ in 0..50 {
        if try_lock(lock_conn, mailbox_id).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(RepoError::Locked {
        run_id: Some(run_id),
        heartbeat_age_secs: age as i64,
    })
}

#[async_trait]
impl crate::repo::Runs for super::PgRepository {
    async fn start_run(&self, start: &RunStart) -> Result<HeldRun, RepoError> {
        let pool = &self.pool;
        let mailbox_id = start.mailbox_id;
        let mut lock_conn = PgConnection::connect_with(&pool.connect_options())
            .await
            .map_err(RepoError::db("open run lock connection"))?;
        if !try_lock(&mut lock_conn, mailbox_id).await? {
            take_over_if_hung(pool, &mut lock_conn, mailbox_id, start.stale_after).await?;
        }

        let mut tx = pool.begin().await.map_err(RepoError::db("begin run"))?;
        // We hold the lock, so any run still marked running has lost its process.
        let dead: Vec<i64> = sqlx::query_scalar(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = now(),
                    error = coalesce(error, 'the process running it stopped without finishing')
             WHERE mailbox_id = $1 AND status = 'running' RETURNING id",
        )
        .bind(mailbox_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(RepoError::db("mark dead runs interrupted"))?;
        for run_id in &dead {
            warn!(run_id, "previous run found dead; marked interrupted");
            ledger::append_terminal(
                &mut tx,
                mailbox_id,
                *run_id,
                NewEvent::new(
                    EventType::SyncInterrupted,
                    Subject::Run(*run_id),
                    json!({"reason": "process stopped without finishing"}),
                ),
            )
            .await?;
        }

        let host = std::env::var("HOSTNAME").ok();
        let start_history_id = start
            .start_history_id
            .map(|h| as_i64("historyId", h.0))
            .transpose()?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (mailbox_id, kind, window_start, window_end, start_history_id, host, pid)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(mailbox_id)
        .bind(start.kind.as_str())
        .bind(start.window.map(|w| w.since))
        .bind(start.window.map(|w| w.until))
        .bind(start_history_id)
        .bind(host)
        .bind(std::process::id() as i32)
        .fetch_one(&mut *tx)
        .await
        .map_err(RepoError::db("insert run"))?;
        ledger::append(
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
        info!(run_id, kind = start.kind.as_str(), "run started");
        Ok(HeldRun {
            fence: Fence { run_id, mailbox_id },
            hold: Box::new(lock_conn),
        })
    }

    async fn heartbeat(&self, fence: Fence) -> Result<bool, RepoError> {
        let pool = &self.pool;
        let n = sqlx::query(
            "UPDATE sync_runs SET heartbeat_at = now() WHERE id = $1 AND status = 'running'",
        )
        .bind(fence.run_id)
        .execute(pool)
        .await
        .map_err(RepoError::db("heartbeat"))?
        .rows_affected();
        Ok(n > 0)
    }

    async fn finish_run(&self, run: &mut HeldRun, end: &RunEnd) -> Result<(), RepoError> {
        let pool = &self.pool;
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
        let mut tx = pool.begin().await.map_err(RepoError::db("begin run end"))?;
        // Only a run that is still running ends here: one taken over was already
        // ended (interrupted, with its terminal event) by the run that took it.
        let ended = sqlx::query(
            "UPDATE sync_runs SET status = $2, finished_at = now(), heartbeat_at = now(),
                    counts = $3, error = $4, end_history_id = coalesce($5, end_history_id)
             WHERE id = $1 AND status = 'running'",
        )
        .bind(run_id)
        .bind(end.status.as_str())
        .bind(&end.counts)
        .bind(&end.error)
        .bind(end_history_id)
        .execute(&mut *tx)
        .await
        .map_err(RepoError::db("finish run"))?
        .rows_affected();
        if ended == 0 {
            // A retry after a finish whose commit was acknowledged into a dropped
            // connection finds the run already ended as asked: that is success.
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = $1")
                    .bind(run_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(RepoError::db("read run status"))?;
            if status.as_deref() == Some(end.status.as_str())
                && finished_by_us(&mut tx, run_id).await?
            {
                return Ok(());
            }
            return Err(RepoError::LeaseLost { run_id });
        }
        ledger::append_terminal(
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
        // Closing the connection releases the advisory lock.
        let hold = std::mem::replace(&mut run.hold, Box::new(()));
        if let Ok(conn) = hold.downcast::<PgConnection>() {
            let _ = conn.close().await;
        }
        Ok(())
    }

    async fn begin(&self, fence: Fence) -> Result<Box<dyn RepoTx>, RepoError> {
        let mut tx = self.pool.begin().await.map_err(RepoError::db("begin"))?;
        prove_lease(&mut tx, fence).await?;
        Ok(Box::new(PgTx { tx, fence }))
    }
}
