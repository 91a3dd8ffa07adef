//! The set of mailboxes served and their sync schedule.
//!
//! Workers coordinate through Postgres alone: a due mailbox is claimed with
//! `FOR UPDATE SKIP LOCKED` and its `next_sync_at` pushed past the run's lease
//! in the same statement, so two workers never claim it at once; the run lease
//! (advisory lock) then guarantees one live run even against a manual `sync`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tracing::instrument;

use crate::engine::EngineError;
use crate::repo::{self, Outcome};

fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> EngineError {
    move |source| EngineError::Database { operation, source }
}

/// A mailbox as `mailbox list` and `status` show it.
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
}

const MAILBOX_COLUMNS: &str =
    "id, org_id, provider_email, enabled, history_id, history_id_updated_at,
     sync_interval_secs, next_sync_at, consecutive_failures, last_error";

/// Registers a mailbox (or re-enables it); returns its id and whether it was new.
#[instrument(skip_all)]
pub async fn add(
    conn: &mut PgConnection,
    org: &str,
    email: &str,
    interval: Option<Duration>,
) -> Result<(i64, Outcome), EngineError> {
    let (id, outcome) = repo::pg::upsert_mailbox(conn, org, email).await?;
    let secs = interval.map(|d| d.as_secs().clamp(1, i32::MAX as u64) as i32);
    let changed = sqlx::query(
        "UPDATE mailboxes SET enabled = true, sync_interval_secs = coalesce($2, sync_interval_secs),
                updated_at = now()
         WHERE id = $1 AND (NOT enabled OR sync_interval_secs IS DISTINCT FROM coalesce($2, sync_interval_secs))",
    )
    .bind(id)
    .bind(secs)
    .execute(&mut *conn)
    .await
    .map_err(db("enable mailbox"))?
    .rows_affected();
    let outcome = match (outcome, changed) {
        (Outcome::Inserted, _) => Outcome::Inserted,
        (_, 0) => Outcome::Unchanged,
        _ => Outcome::Updated,
    };
    Ok((id, outcome))
}

/// Stops scheduling a mailbox; its data stays. Returns false when unknown.
pub async fn disable(conn: &mut PgConnection, org: &str, email: &str) -> Result<bool, EngineError> {
    let n = sqlx::query(
        "UPDATE mailboxes SET enabled = false, updated_at = now()
         WHERE org_id = $1 AND provider_email = lower($2)",
    )
    .bind(org)
    .bind(email)
    .execute(conn)
    .await
    .map_err(db("disable mailbox"))?
    .rows_affected();
    Ok(n > 0)
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<MailboxRow>, EngineError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes ORDER BY org_id, provider_email"
    )))
    .fetch_all(conn)
    .await
    .map_err(db("list mailboxes"))
}

/// Looks a mailbox up by address (in any org when `org` is None).
pub async fn find(
    conn: &mut PgConnection,
    org: &str,
    email: &str,
) -> Result<Option<MailboxRow>, EngineError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE org_id = $1 AND provider_email = lower($2)"
    )))
    .bind(org)
    .bind(email)
    .fetch_optional(conn)
    .await
    .map_err(db("find mailbox"))
}

/// Claims up to `limit` due, enabled mailboxes for this worker. Their
/// `next_sync_at` moves to `now + hold` so no other worker claims them while
/// they run; `finish_scheduled` sets the real next time.
#[instrument(skip_all)]
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    hold: Duration,
) -> Result<Vec<MailboxRow>, EngineError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH due AS (
             SELECT id FROM mailboxes
             WHERE enabled AND next_sync_at <= now()
             ORDER BY next_sync_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         UPDATE mailboxes m SET next_sync_at = now() + make_interval(secs => $2)
         FROM due WHERE m.id = due.id
         RETURNING {}",
        MAILBOX_COLUMNS
            .split(',')
            .map(|c| format!("m.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(limit)
    .bind(hold.as_secs_f64())
    .fetch_all(pool)
    .await
    .map_err(db("claim due mailboxes"))
}

/// Schedules the next sync after a run: the interval on success; on failure
/// an exponential backoff (interval × 2^failures, capped at a day) with the
/// failure counted and its error kept for `status`.
/// `interval` overrides the mailbox's own `sync_interval_secs`.
pub async fn finish_scheduled(
    pool: &PgPool,
    mailbox_id: i64,
    error: Option<&str>,
    interval: Option<Duration>,
) -> Result<(), EngineError> {
    let secs = interval.map(|d| d.as_secs_f64());
    match error {
        None => sqlx::query(
            "UPDATE mailboxes SET consecutive_failures = 0, last_error = NULL,
                    next_sync_at = now() + make_interval(secs => coalesce($2, sync_interval_secs)),
                    updated_at = now()
             WHERE id = $1",
        )
        .bind(mailbox_id)
        .bind(secs)
        .execute(pool)
        .await,
        Some(err) => sqlx::query(
            "UPDATE mailboxes SET consecutive_failures = consecutive_failures + 1, last_error = $2,
                    next_sync_at = now() + make_interval(secs => least(86400,
                        coalesce($3, sync_interval_secs) * power(2, least(consecutive_failures + 1, 16)))),
                    updated_at = now()
             WHERE id = $1",
        )
        .bind(mailbox_id)
        .bind(err)
        .bind(secs)
        .execute(pool)
        .await,
    }
    .map_err(db("schedule next sync"))?;
    Ok(())
}

/// Puts a claimed mailbox back to be tried again at `now + after` without
/// counting a failure (another run held it).
pub async fn release_claim(
    pool: &PgPool,
    mailbox_id: i64,
    after: Duration,
) -> Result<(), EngineError> {
    sqlx::query(
        "UPDATE mailboxes SET next_sync_at = now() + make_interval(secs => $2) WHERE id = $1",
    )
    .bind(mailbox_id)
    .bind(after.as_secs_f64())
    .execute(pool)
    .await
    .map_err(db("release claim"))?;
    Ok(())
}

/// One line of `mailingest status`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MailboxStatus {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub mailbox: MailboxRow,
    pub cursor_age_secs: Option<f64>,
    pub messages: i64,
    pub messages_deleted: i64,
    pub threads: i64,
    pub attachments: i64,
    pub last_run_id: Option<i64>,
    pub last_run_kind: Option<String>,
    pub last_run_status: Option<String>,
    pub last_run_started_at: Option<DateTime<Utc>>,
    pub last_run_finished_at: Option<DateTime<Utc>>,
    pub last_run_heartbeat_age_secs: Option<f64>,
    pub last_run_error: Option<String>,
    pub last_run_counts: Option<serde_json::Value>,
}

pub async fn status(conn: &mut PgConnection) -> Result<Vec<MailboxStatus>, EngineError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {cols},
                extract(epoch FROM now() - mb.history_id_updated_at)::float8 AS cursor_age_secs,
                (SELECT count(*) FROM mail_messages WHERE mailbox_id = mb.id) AS messages,
                (SELECT count(*) FROM mail_messages WHERE mailbox_id = mb.id AND deleted_at IS NOT NULL) AS messages_deleted,
                (SELECT count(*) FROM mail_threads WHERE mailbox_id = mb.id) AS threads,
                (SELECT count(*) FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
                  WHERE m.mailbox_id = mb.id) AS attachments,
                r.id AS last_run_id, r.kind AS last_run_kind, r.status AS last_run_status,
                r.started_at AS last_run_started_at, r.finished_at AS last_run_finished_at,
                extract(epoch FROM now() - r.heartbeat_at)::float8 AS last_run_heartbeat_age_secs,
                r.error AS last_run_error, r.counts AS last_run_counts
         FROM mailboxes mb
         LEFT JOIN LATERAL (SELECT * FROM sync_runs WHERE mailbox_id = mb.id ORDER BY id DESC LIMIT 1) r ON true
         ORDER BY mb.org_id, mb.provider_email",
        cols = MAILBOX_COLUMNS
            .split(',')
            .map(|c| format!("mb.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .fetch_all(conn)
    .await
    .map_err(db("read status"))
}
