//! PostgreSQL: the embedded schema, `migrations/` at the workspace root, compiled in.
//!
//! sqlx's Postgres migrator takes an advisory lock for the duration of a
//! migration run, so two processes migrating at once serialise instead of
//! racing, and an already-applied migration is skipped by checksum.

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};

use crate::repo::RepoError;

/// Every migration of the product, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Applies all pending migrations; harmless when there are none.
#[tracing::instrument(skip_all)]
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

#[async_trait]
impl crate::repo::Repository for super::PgRepository {
    async fn migrate(&self) -> Result<(), RepoError> {
        migrate(&self.pool).await.map_err(RepoError::Migrate)
    }
}
