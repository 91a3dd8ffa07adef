//! The shared quota budgets every process on one database draws from: the
//! per-minute bucket (`shared_quota`) and the units spent per Pacific quota
//! day (`project_quota_days`), so many workers respect one Gmail project.

use async_trait::async_trait;

use super::RepoError;

/// The shared quota: one bucket and one daily total per budget key.
#[async_trait]
pub trait QuotaBudget: Send + Sync {
    /// Debits `units` from the shared quota bucket `key` (refilled at `rate`
    /// units/s, holding at most `burst`), creating it full if new; returns the
    /// units left, negative when the caller must wait for them.
    async fn reserve_shared_quota(
        &self,
        key: &str,
        units: f64,
        rate: f64,
        burst: f64,
    ) -> Result<f64, RepoError>;
    /// Adds `units` to budget `key`'s quota `day` unless that would carry its
    /// total past `limit`; returns the day's new total, `None` when refused
    /// (nothing added).
    async fn reserve_daily_units(
        &self,
        key: &str,
        day: chrono::NaiveDate,
        units: i64,
        limit: i64,
    ) -> Result<Option<i64>, RepoError>;
    /// Units budget `key` reserved on quota `day` (0 when none).
    async fn daily_units(&self, key: &str, day: chrono::NaiveDate) -> Result<i64, RepoError>;
}
