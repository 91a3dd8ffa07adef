//! SQLite statements of scheduled completeness checks (`verify_runs`) and of
//! the shared quota bucket (`shared_quota`): small per-mailbox bookkeeping
//! the worker keeps beside the runs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use super::{after, now};
use crate::repo::{RepoError, VerifyRun};

/// Takes the mailbox's check if it is due, moving the next one `every` on.
pub(crate) async fn claim_verify(
    pool: &SqlitePool,
    mailbox_id: i64,
    every: Duration,
) -> Result<bool, RepoError> {
    let at = now();
    let next = after(at, every);
    let claimed = sqlx::query(
        "UPDATE mailboxes SET next_verify_at = ?3 WHERE id = ?1 AND next_verify_at <= ?2",
    )
    .bind(mailbox_id)
    .bind(at)
    .bind(next)
    .execute(pool)
    .await
    .map_err(RepoError::db("claim a completeness check"))?;
    Ok(claimed.rows_affected() == 1)
}

pub(crate) async fn record_verify(
    pool: &SqlitePool,
    mailbox_id: i64,
    started_at: DateTime<Utc>,
    run: &VerifyRun,
) -> Result<(), RepoError> {
    let findings = serde_json::to_string(&run.findings).map_err(|source| RepoError::Encode {
        operation: "record a completeness check",
        source,
    })?;
    sqlx::query(
        "INSERT INTO verify_runs (mailbox_id, started_at, finished_at, ok, missing_here,
                                  gone_there, findings)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(mailbox_id)
    .bind(started_at)
    .bind(now().max(started_at))
    .bind(run.ok)
    .bind(i64::try_from(run.missing_here).unwrap_or(i64::MAX))
    .bind(i64::try_from(run.gone_there).unwrap_or(i64::MAX))
    .bind(findings)
    .execute(pool)
    .await
    .map_err(RepoError::db("record a completeness check"))?;
    Ok(())
}

/// Refills the bucket for the time since its last use, debits `units`, and
/// returns what is left (negative: the caller waits `-left / rate`). SQLite's
/// single writer serialises reservations.
pub(crate) async fn reserve_shared_quota(
    pool: &SqlitePool,
    key: &str,
    units: f64,
    rate: f64,
    burst: f64,
) -> Result<f64, RepoError> {
    sqlx::query_scalar(
        "INSERT INTO shared_quota AS q (key, tokens, refilled_at)
         VALUES (?1, ?4 - ?2, ?5)
         ON CONFLICT (key) DO UPDATE SET
             tokens = min(?4, q.tokens + ?3 * max(0.0,
                          (julianday(?5) - julianday(q.refilled_at)) * 86400.0)) - ?2,
             refilled_at = ?5
         RETURNING tokens",
    )
    .bind(key)
    .bind(units)
    .bind(rate)
    .bind(burst)
    .bind(now())
    .fetch_one(pool)
    .await
    .map_err(RepoError::db("reserve shared quota"))
}

/// Adds `units` to `key`'s `day` unless the total would pass `limit`; SQLite's
/// single writer serialises reservations. `None`: refused, nothing added.
pub(crate) async fn reserve_daily_units(
    pool: &SqlitePool,
    key: &str,
    day: chrono::NaiveDate,
    units: i64,
    limit: i64,
) -> Result<Option<i64>, RepoError> {
    if units > limit {
        return Ok(None);
    }
    sqlx::query_scalar(
        "INSERT INTO project_quota_days AS d (key, day, units) VALUES (?1, ?2, ?3)
         ON CONFLICT (key, day) DO UPDATE SET units = d.units + ?3
         WHERE d.units + ?3 <= ?4
         RETURNING units",
    )
    .bind(key)
    .bind(day.to_string())
    .bind(units)
    .bind(limit)
    .fetch_optional(pool)
    .await
    .map_err(RepoError::db("reserve daily quota units"))
}

/// Units `key` reserved on `day`.
pub(crate) async fn daily_units(
    pool: &SqlitePool,
    key: &str,
    day: chrono::NaiveDate,
) -> Result<i64, RepoError> {
    let units: Option<i64> =
        sqlx::query_scalar("SELECT units FROM project_quota_days WHERE key = ?1 AND day = ?2")
            .bind(key)
            .bind(day.to_string())
            .fetch_optional(pool)
            .await
            .map_err(RepoError::db("read daily quota units"))?;
    Ok(units.unwrap_or(0))
}
