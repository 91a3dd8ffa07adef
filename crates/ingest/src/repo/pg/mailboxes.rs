//! PostgreSQL: the mailboxes served, their schedule, and `status`.
//!
//! Workers coordinate through Postgres alone: a due mailbox is claimed with
//! `FOR UPDATE SKIP LOCKED` and its `next_sync_at` pushed past the run's lease
//! in the same statement, so two workers never claim it at once; the run lease
//! then guarantees one live run even against a manual `sync`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tracing::instrument;

use crate::domain::{MailboxAddress, Outcome};
use crate::repo::{HistoryCursor, MailboxRow, MailboxStatus, NextSync, RepoError};

/// The columns of a `MailboxRow`, in its field order, qualified by `alias`.
fn mailbox_columns(alias: &str) -> String {
    [
        "id",
        "org_id",
        "provider_email",
        "enabled",
        "history_id",
        "history_id_updated_at",
        "sync_interval_secs",
        "next_sync_at",
        "consecutive_failures",
        "last_error",
        "history_rewound_at",
    ]
    .map(|c| format!("{alias}.{c}"))
    .join(", ")
}

pub(crate) async fn add(
    conn: &mut PgConnection,
    org: &str,
    email: &str,
    interval: Option<Duration>,
) -> Result<(i64, Outcome), RepoError> {
    let (id, outcome) = upsert_mailbox(conn, org, email).await?;
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
    .map_err(RepoError::db("enable mailbox"))?
    .rows_affected();
    let outcome = match (outcome, changed) {
        (Outcome::Inserted, _) => Outcome::Inserted,
        (_, 0) => Outcome::Unchanged,
        _ => Outcome::Updated,
    };
    Ok((id, outcome))
}

#[derive(sqlx::FromRow)]
struct PgStatus {
    #[sqlx(flatten)]
    mailbox: MailboxRow,
    cursor_age_secs: Option<f64>,
    messages: i64,
    messages_deleted: i64,
    threads: i64,
    attachments: i64,
    quarantined: i64,
    quarantine_given_up: i64,
    quota_units_today: i64,
    last_success_at: Option<DateTime<Utc>>,
    last_verify_at: Option<DateTime<Utc>>,
    last_verify_ok: Option<bool>,
    last_verify_findings: Option<Vec<String>>,
    last_run_id: Option<i64>,
    last_run_kind: Option<String>,
    last_run_status: Option<String>,
    last_run_started_at: Option<DateTime<Utc>>,
    last_run_finished_at: Option<DateTime<Utc>>,
    last_run_heartbeat_age_secs: Option<f64>,
    last_run_error: Option<String>,
    last_run_counts: Option<serde_json::Value>,
}

impl TryFrom<PgStatus> for MailboxStatus {
    type Error = RepoError;
    fn try_from(r: PgStatus) -> Result<Self, RepoError> {
        let corrupt = |e: crate::domain::UnknownValue| RepoError::Corrupt(e.to_string());
        Ok(MailboxStatus {
            mailbox: r.mailbox,
            cursor_age_secs: r.cursor_age_secs,
            messages: r.messages,
            messages_deleted: r.messages_deleted,
            threads: r.threads,
            attachments: r.attachments,
            quarantined: r.quarantined,
            quarantine_given_up: r.quarantine_given_up,
            quota_units_today: r.quota_units_today,
            last_success_at: r.last_success_at,
            last_verify_at: r.last_verify_at,
            last_verify_ok: r.last_verify_ok,
            last_verify_findings: r.last_verify_findings,
            last_run_id: r.last_run_id,
            last_run_kind: r
                .last_run_kind
                .map(|k| k.parse())
                .transpose()
                .map_err(corrupt)?,
            last_run_status: r
                .last_run_status
                .map(|s| s.parse())
                .transpose()
                .map_err(corrupt)?,
            last_run_started_at: r.last_run_started_at,
            last_run_finished_at: r.last_run_finished_at,
            last_run_heartbeat_age_secs: r.last_run_heartbeat_age_secs,
            last_run_error: r.last_run_error,
            last_run_counts: r.last_run_counts,
        })
    }
}

/// Inserts the mailbox if it is new and returns its id either way.
#[instrument(skip_all)]
pub async fn upsert_mailbox(
    conn: &mut PgConnection,
    org_id: &str,
    provider_email: &str,
) -> Result<(i64, Outcome), RepoError> {
    const OP: &str = "upsert mailbox";
    let email = MailboxAddress::normalized(provider_email);
    // DO UPDATE with a no-op assignment would write a new tuple on every call;
    // DO NOTHING + a follow-up read writes nothing for an existing mailbox.
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO mailboxes (org_id, provider_email) VALUES ($1, $2)
         ON CONFLICT (org_id, provider_email) DO NOTHING RETURNING id",
    )
    .bind(org_id)
    .bind(email.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(RepoError::db(OP))?;
    if let Some(id) = inserted {
        return Ok((id, Outcome::Inserted));
    }
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM mailboxes WHERE org_id = $1 AND provider_email = $2")
            .bind(org_id)
            .bind(email.as_str())
            .fetch_one(&mut *conn)
            .await
            .map_err(RepoError::db(OP))?;
    Ok((id, Outcome::Unchanged))
}

#[async_trait]
impl crate::repo::Mailboxes for super::PgRepository {
    async fn register_mailbox(&self, org: &str, email: &str) -> Result<(i64, Outcome), RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        upsert_mailbox(&mut conn, org, email).await
    }

    async fn add_mailbox(
        &self,
        org: &str,
        email: &str,
        interval: Option<Duration>,
    ) -> Result<(i64, Outcome), RepoError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(RepoError::db("acquire"))?;
        add(&mut conn, org, email, interval).await
    }

    async fn disable_mailbox(&self, org: &str, email: &str) -> Result<bool, RepoError> {
        let pool = &self.pool;
        let n = sqlx::query(
            "UPDATE mailboxes SET enabled = false, updated_at = now()
             WHERE org_id = $1 AND provider_email = $2",
        )
        .bind(org)
        .bind(MailboxAddress::normalized(email).as_str())
        .execute(pool)
        .await
        .map_err(RepoError::db("disable mailbox"))?
        .rows_affected();
        Ok(n > 0)
    }

    async fn list_mailboxes(&self, org: &str) -> Result<Vec<MailboxRow>, RepoError> {
        let pool = &self.pool;
        let rows: Vec<MailboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM mailboxes mb WHERE mb.org_id = $1 ORDER BY mb.provider_email",
            mailbox_columns("mb")
        )))
        .bind(org)
        .fetch_all(pool)
        .await
        .map_err(RepoError::db("list mailboxes"))?;
        Ok(rows)
    }

    async fn mailbox_cursor(&self, mailbox_id: i64) -> Result<Option<HistoryCursor>, RepoError> {
        let pool = &self.pool;
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT history_id FROM mailboxes WHERE id = $1")
                .bind(mailbox_id)
                .fetch_one(pool)
                .await
                .map_err(RepoError::db("read cursor"))?;
        // The column's CHECK keeps it non-negative.
        Ok(cursor.map(|c| HistoryCursor(c.max(0) as u64)))
    }

    async fn claim_due(
        &self,
        org: &str,
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<MailboxRow>, RepoError> {
        let pool = &self.pool;
        let rows: Vec<MailboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH due AS (
                 SELECT id FROM mailboxes
                 WHERE enabled AND org_id = $3 AND next_sync_at <= now()
                 ORDER BY next_sync_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             UPDATE mailboxes m SET next_sync_at = now() + make_interval(secs => $2)
             FROM due WHERE m.id = due.id
             RETURNING {}",
            mailbox_columns("m")
        )))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(hold.as_secs_f64())
        .bind(org)
        .fetch_all(pool)
        .await
        .map_err(RepoError::db("claim due mailboxes"))?;
        Ok(rows)
    }

    async fn schedule_next(&self, mailbox_id: i64, next: NextSync<'_>) -> Result<(), RepoError> {
        let pool = &self.pool;
        let query = match next {
            NextSync::AfterSuccess { interval } => sqlx::query(
                "UPDATE mailboxes SET consecutive_failures = 0, last_error = NULL,
                        next_sync_at = now() + make_interval(secs => coalesce($2, sync_interval_secs)),
                        updated_at = now()
                 WHERE id = $1",
            )
            .bind(mailbox_id)
            .bind(interval.map(|d| d.as_secs_f64())),
            NextSync::AfterFailure { error, interval } => sqlx::query(
                "UPDATE mailboxes SET consecutive_failures = consecutive_failures + 1, last_error = $2,
                        next_sync_at = now() + make_interval(secs => least(86400,
                            coalesce($3, sync_interval_secs) * power(2, least(consecutive_failures + 1, 16)))),
                        updated_at = now()
                 WHERE id = $1",
            )
            .bind(mailbox_id)
            .bind(error)
            .bind(interval.map(|d| d.as_secs_f64())),
            NextSync::Retry { after } => sqlx::query(
                "UPDATE mailboxes SET next_sync_at = now() + make_interval(secs => $2) WHERE id = $1",
            )
            .bind(mailbox_id)
            .bind(after.as_secs_f64()),
        };
        query
            .execute(pool)
            .await
            .map_err(RepoError::db("schedule next sync"))?;
        Ok(())
    }

    async fn mailbox_status(&self, org: &str) -> Result<Vec<MailboxStatus>, RepoError> {
        let pool = &self.pool;
        let rows: Vec<PgStatus> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {cols},
                    extract(epoch FROM now() - mb.history_id_updated_at)::float8 AS cursor_age_secs,
                    (SELECT count(*) FROM mail_messages WHERE mailbox_id = mb.id) AS messages,
                    (SELECT count(*) FROM mail_messages WHERE mailbox_id = mb.id AND deleted_at IS NOT NULL) AS messages_deleted,
                    (SELECT count(*) FROM mail_threads WHERE mailbox_id = mb.id) AS threads,
                    (SELECT count(*) FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
                      WHERE m.mailbox_id = mb.id) AS attachments,
                    (SELECT count(*) FROM quarantined_messages WHERE mailbox_id = mb.id) AS quarantined,
                    (SELECT max(finished_at) FROM sync_runs
                      WHERE mailbox_id = mb.id AND status = 'completed' AND kind <> 'gc') AS last_success_at,
                    v.finished_at AS last_verify_at, v.ok AS last_verify_ok,
                    v.findings AS last_verify_findings,
                    (SELECT count(*) FROM quarantined_messages
                      WHERE mailbox_id = mb.id AND attempts >= $1) AS quarantine_given_up,
                    (SELECT coalesce(sum((counts->>'quota_units')::bigint), 0)::bigint FROM sync_runs
                      WHERE mailbox_id = mb.id AND started_at >= $2) AS quota_units_today,
                    r.id AS last_run_id, r.kind AS last_run_kind, r.status AS last_run_status,
                    r.started_at AS last_run_started_at, r.finished_at AS last_run_finished_at,
                    extract(epoch FROM now() - r.heartbeat_at)::float8 AS last_run_heartbeat_age_secs,
                    r.error AS last_run_error, r.counts AS last_run_counts
             FROM mailboxes mb
             LEFT JOIN LATERAL (SELECT * FROM sync_runs WHERE mailbox_id = mb.id ORDER BY id DESC LIMIT 1) r ON true
             LEFT JOIN LATERAL (SELECT * FROM verify_runs WHERE mailbox_id = mb.id ORDER BY id DESC LIMIT 1) v ON true
             WHERE mb.org_id = $3
             ORDER BY mb.provider_email",
            cols = mailbox_columns("mb")
        )))
        .bind(crate::repo::quarantine::MAX_ATTEMPTS)
        .bind(gmail::pacific_day_start(chrono::Utc::now()))
        .bind(org)
        .fetch_all(pool)
        .await
        .map_err(RepoError::db("read status"))?;
        rows.into_iter().map(MailboxStatus::try_from).collect()
    }
}
