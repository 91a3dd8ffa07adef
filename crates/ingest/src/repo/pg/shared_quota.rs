//! PostgreSQL statement of the shared quota bucket (`shared_quota`): one row
//! per budget, refilled continuously, debited by reservation in one
//! statement, so every process on the database sees one budget.

use sqlx::PgPool;

use crate::repo::RepoError;

/// Refills the bucket for the time since its last use, debits `units`, and
/// returns what is left (negative: the caller waits `-left / rate`). The row
/// lock serialises reservations, so concurrent callers queue in order.
pub(crate) async fn reserve(
    pool: &PgPool,
    key: &str,
    units: f64,
    rate: f64,
    burst: f64,
) -> Result<f64, RepoError> {
    sqlx::query_scalar(
        "INSERT INTO shared_quota AS q (key, tokens, refilled_at)
         VALUES ($1, $4 - $2, clock_timestamp())
         ON CONFLICT (key) DO UPDATE SET
             tokens = least($4, q.tokens
                 + $3 * extract(epoch FROM clock_timestamp() - q.refilled_at)) - $2,
             refilled_at = clock_timestamp()
         RETURNING tokens",
    )
    .bind(key)
    .bind(units)
    .bind(rate)
    .bind(burst)
    .fetch_one(pool)
    .await
    .map_err(RepoError::db("reserve shared quota"))
}
