//! SQLite statements of the shared quota: the bucket (`shared_quota`) and the
//! units spent per quota day (`project_quota_days`). SQLite's single writer
//! serialises reservations.

use async_trait::async_trait;

use super::now;
use crate::repo::RepoError;

#[async_trait]
impl crate::repo::QuotaBudget for super::SqliteRepository {
    async fn reserve_shared_quota(
        &self,
        key: &str,
        units: f64,
        rate: f64,
        burst: f64,
    ) -> Result<f64, RepoError> {
        let pool = &self.pool;
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

    async fn reserve_daily_units(
        &self,
        key: &str,
        day: chrono::NaiveDate,
        units: i64,
        limit: i64,
    ) -> Result<Option<i64>, RepoError> {
        let pool = &self.pool;
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

    async fn daily_units(&self, key: &str, day: chrono::NaiveDate) -> Result<i64, RepoError> {
        let pool = &self.pool;
        let units: Option<i64> =
            sqlx::query_scalar("SELECT units FROM project_quota_days WHERE key = ?1 AND day = ?2")
                .bind(key)
                .bind(day.to_string())
                .fetch_optional(pool)
                .await
                .map_err(RepoError::db("read daily quota units"))?;
        Ok(units.unwrap_or(0))
    }
}
