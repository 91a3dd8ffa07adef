//! SQLite: the mailboxes served, their schedule, and `status`.
//!
//! A claim is one `UPDATE … WHERE id IN (due …) RETURNING`: SQLite runs one
//! writer at a time, so two workers on this database never claim the same
//! mailbox (what `FOR UPDATE SKIP LOCKED` gives on PostgreSQL).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{TS, after, begin_immediate, now};
use crate::domain::{MailboxAddress, Outcome};
use crate::repo::{HistoryCursor, MailboxRow, MailboxStatus, NextSync, RepoError};

const COLUMNS: &str = "mb.id, mb.org_id, mb.provider_email, mb.enabled, mb.history_id,
     mb.history_id_updated_at, mb.sync_interval_secs, mb.next_sync_at,
     mb.consecutive_failures, mb.last_error, mb.history_rewound_at";

/// Inserts the mailbox if it is new and returns its id either way.
pub(crate) async fn upsert_mailbox(
    conn: &mut SqliteConnection,
    org_id: &str,
    provider_email: &str,
) -> Result<(i64, Outcome), RepoError> {
    const OP: &str = "upsert mailbox";
    let email = MailboxAddress::normalized(provider_email);
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO mailboxes (org_id, provider_email, next_sync_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (org_id, provider_email) DO NOTHING RETURNING id",
    )
    .bind(org_id)
    .bind(email.as_str())
    .bind(now())
    .fetch_optional(&mut *conn)
    .await
    .map_err(RepoError::db(OP))?;
    if let Some(id) = inserted {
        return Ok((id, Outcome::Inserted));
    }
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM mailboxes WHERE org_id = ?1 AND provider_email = ?2")
            .bind(org_id)
            .bind(email.as_str())
            .fetch_one(&mut *conn)
            .await
            .map_err(RepoError::db(OP))?;
    Ok((id, Outcome::Unchanged))
}

pub(crate) async fn add(
    conn: &mut SqliteConnection,
    org: &str,
    email: &str,
    interval: Option<Duration>,
) -> Result<(i64, Outcome), RepoError> {
    let (id, outcome) = upsert_mailbox(conn, org, email).await?;
    let secs = interval.map(|d| d.as_secs().clamp(1, i32::MAX as u64) as i32);
    let changed = sqlx::query(
        "UPDATE mailboxes SET enabled = 1, sync_interval_secs = coalesce(?2, sync_interval_secs),
                updated_at = ?3
         WHERE id = ?1 AND (NOT enabled OR sync_interval_secs IS NOT coalesce(?2, sync_interval_secs))",
    )
    .bind(id)
    .bind(secs)
    .bind(now())
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
struct SqliteStatus {
    #[sqlx(flatten)]
    mailbox: MailboxRow,
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
    last_verify_findings: Option<String>,
    last_run_id: Option<i64>,
    last_run_kind: Option<String>,
    last_run_status: Option<String>,
    last_run_started_at: Option<DateTime<Utc>>,
    last_run_finished_at: Option<DateTime<Utc>>,
    last_run_heartbeat_at: Option<DateTime<Utc>>,
    last_run_error: Option<String>,
    last_run_counts: Option<String>,
}

fn age_secs(at: DateTime<Utc>, then: Option<DateTime<Utc>>) -> Option<f64> {
    then.map(|t| (at - t).as_seconds_f64())
}

fn parse_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: Option<String>,
) -> Result<Option<T>, RepoError> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| RepoError::Corrupt(format!("stored {what} is not valid JSON: {e}")))
}

impl SqliteStatus {
    fn into_status(self, at: DateTime<Utc>) -> Result<MailboxStatus, RepoError> {
        let corrupt = |e: crate::domain::UnknownValue| RepoError::Corrupt(e.to_string());
        let cursor_age_secs = age_secs(at, self.mailbox.history_id_updated_at);
        Ok(MailboxStatus {
            mailbox: self.mailbox,
            cursor_age_secs,
            messages: self.messages,
            messages_deleted: self.messages_deleted,
            threads: self.threads,
            attachments: self.attachments,
            quarantined: self.quarantined,
            quarantine_given_up: self.quarantine_given_up,
            quota_units_today: self.quota_units_today,
            last_success_at: self.last_success_at,
            last_verify_at: self.last_verify_at,
            last_verify_ok: self.last_verify_ok,
            last_verify_findings: parse_json("verify findings", self.last_verify_findings)?,
            last_run_id: self.last_run_id,
            last_run_kind: self
                .last_run_kind
                .map(|k| k.parse())
                .transpose()
                .map_err(corrupt)?,
            last_run_status: self
                .last_run_status
                .map(|s| s.parse())
                .transpose()
                .map_err(corrupt)?,
            last_run_started_at: self.last_run_started_at,
            last_run_finished_at: self.last_run_finished_at,
            last_run_heartbeat_age_secs: age_secs(at, self.last_run_heartbeat_at),
            last_run_error: self.last_run_error,
            last_run_counts: parse_json("run counts", self.last_run_counts)?,
        })
    }
}

#[async_trait]
impl crate::repo::Mailboxes for super::SqliteRepository {
    async fn register_mailbox(&self, org: &str, email: &str) -> Result<(i64, Outcome), RepoError> {
        let mut tx = begin_immediate(&self.pool, "register mailbox").await?;
        let done = upsert_mailbox(&mut tx, org, email).await?;
        tx.commit().await.map_err(RepoError::db("commit"))?;
        Ok(done)
    }

    async fn add_mailbox(
        &self,
        org: &str,
        email: &str,
        interval: Option<Duration>,
    ) -> Result<(i64, Outcome), RepoError> {
        let mut tx = begin_immediate(&self.pool, "add mailbox").await?;
        let done = add(&mut tx, org, email, interval).await?;
        tx.commit().await.map_err(RepoError::db("commit"))?;
        Ok(done)
    }

    async fn disable_mailbox(&self, org: &str, email: &str) -> Result<bool, RepoError> {
        let pool = &self.pool;
        let n = sqlx::query(
            "UPDATE mailboxes SET enabled = 0, updated_at = ?3
             WHERE org_id = ?1 AND provider_email = ?2",
        )
        .bind(org)
        .bind(MailboxAddress::normalized(email).as_str())
        .bind(now())
        .execute(pool)
        .await
        .map_err(RepoError::db("disable mailbox"))?
        .rows_affected();
        Ok(n > 0)
    }

    async fn list_mailboxes(&self, org: &str) -> Result<Vec<MailboxRow>, RepoError> {
        let pool = &self.pool;
        let rows: Vec<MailboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mailboxes mb WHERE mb.org_id = ?1 ORDER BY mb.provider_email"
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
            sqlx::query_scalar("SELECT history_id FROM mailboxes WHERE id = ?1")
                .bind(mailbox_id)
                .fetch_one(pool)
                .await
                .map_err(RepoError::db("read cursor"))?;
        Ok(cursor.map(|c| HistoryCursor(c.max(0) as u64)))
    }

    async fn claim_due(
        &self,
        org: &str,
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<MailboxRow>, RepoError> {
        let pool = &self.pool;
        let at = now();
        let until = after(at, hold);
        let mut rows: Vec<MailboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE mailboxes SET next_sync_at = ?4
             WHERE id IN (SELECT id FROM mailboxes
                             WHERE enabled AND org_id = ?3 AND next_sync_at <= ?2
                             ORDER BY next_sync_at LIMIT ?1)
             RETURNING {}",
            COLUMNS.replace("mb.", "")
        )))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(at)
        .bind(org)
        .bind(until)
        .fetch_all(pool)
        .await
        .map_err(RepoError::db("claim due mailboxes"))?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    async fn schedule_next(&self, mailbox_id: i64, next: NextSync<'_>) -> Result<(), RepoError> {
        let pool = &self.pool;
        let query = match next {
            NextSync::AfterSuccess { interval } => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE mailboxes SET consecutive_failures = 0, last_error = NULL,
                        next_sync_at = strftime('{TS}', ?3,
                            '+' || coalesce(?2, sync_interval_secs) || ' seconds'),
                        updated_at = ?3
                 WHERE id = ?1"
            )))
            .bind(mailbox_id)
            .bind(interval.map(|d| d.as_secs_f64())),
            NextSync::AfterFailure { error, .. } => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE mailboxes SET consecutive_failures = consecutive_failures + 1, last_error = ?2,
                        next_sync_at = strftime('{TS}', ?3, '+' || min(86400,
                            coalesce(?4, sync_interval_secs) * (1 << min(consecutive_failures + 1, 16)))
                            || ' seconds'),
                        updated_at = ?3
                 WHERE id = ?1"
            )))
            .bind(mailbox_id)
            .bind(error),
            // Computed here, not by strftime: strftime keeps milliseconds (rounded),
            // so "now + 0 s" could sort after a claim's `now` bound a moment later.
            NextSync::Retry { after: delay } => {
                sqlx::query("UPDATE mailboxes SET next_sync_at = ?2, updated_at = ?3 WHERE id = ?1")
                    .bind(mailbox_id)
                    .bind(after(now(), delay))
            }
        };
        let query = query.bind(now());
        let query = match next {
            NextSync::AfterFailure { interval, .. } => {
                query.bind(interval.map(|d| d.as_secs_f64()))
            }
            _ => query,
        };
        query
            .execute(pool)
            .await
            .map_err(RepoError::db("schedule next sync"))?;
        Ok(())
    }

    async fn mailbox_status(&self, org: &str) -> Result<Vec<MailboxStatus>, RepoError> {
        let pool = &self.pool;
        let rows: Vec<SqliteStatus> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS},
                    (SELECT count(*) FROM mail_messages WHERE mailbox_id = mb.id) AS messages,
                    (SELECT count(*) FROM mail_messages WHERE mailbox_id = mb.id AND deleted_at IS NOT NULL) AS messages_deleted,
                    (SELECT count(*) FROM mail_threads WHERE mailbox_id = mb.id) AS threads,
                    (SELECT count(*) FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
                      WHERE m.mailbox_id = mb.id) AS attachments,
                    (SELECT count(*) FROM quarantined_messages WHERE mailbox_id = mb.id) AS quarantined,
                    (SELECT count(*) FROM quarantined_messages
                      WHERE mailbox_id = mb.id AND attempts >= ?1) AS quarantine_given_up,
                    (SELECT coalesce(sum(json_extract(counts, '$.quota_units')), 0) FROM sync_runs
                      WHERE mailbox_id = mb.id AND started_at >= ?2) AS quota_units_today,
                    (SELECT max(finished_at) FROM sync_runs
                      WHERE mailbox_id = mb.id AND status = 'completed' AND kind <> 'gc') AS last_success_at,
                    v.finished_at AS last_verify_at, v.ok AS last_verify_ok,
                    v.findings AS last_verify_findings,
                    r.id AS last_run_id, r.kind AS last_run_kind, r.status AS last_run_status,
                    r.started_at AS last_run_started_at, r.finished_at AS last_run_finished_at,
                    r.heartbeat_at AS last_run_heartbeat_at,
                    r.error AS last_run_error, r.counts AS last_run_counts
             FROM mailboxes mb
             LEFT JOIN sync_runs r
                    ON r.id = (SELECT max(id) FROM sync_runs WHERE mailbox_id = mb.id)
             LEFT JOIN verify_runs v
                    ON v.id = (SELECT max(id) FROM verify_runs WHERE mailbox_id = mb.id)
             WHERE mb.org_id = ?3
             ORDER BY mb.provider_email"
        )))
        .bind(crate::repo::quarantine::MAX_ATTEMPTS)
        .bind(gmail::pacific_day_start(now()))
        .bind(org)
        .fetch_all(pool)
        .await
        .map_err(RepoError::db("read status"))?;
        let at = now();
        rows.into_iter().map(|r| r.into_status(at)).collect()
    }
}
