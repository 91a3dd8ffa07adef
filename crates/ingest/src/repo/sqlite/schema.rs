//! SQLite: the embedded schema, `migrations/sqlite` at the workspace root, compiled in.

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::migrate::{MigrateError, Migrator};

use crate::repo::RepoError;

/// Every migration of the embedded backend, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Applies all pending migrations; harmless when there are none. The caller
/// holds the database's setup lock (see `connect::Locks::setup`):
/// sqlx's SQLite migrator does not serialise two processes migrating at once.
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

#[async_trait]
impl crate::repo::Repository for super::SqliteRepository {
    async fn migrate(&self) -> Result<(), RepoError> {
        let _lock = self.locks.setup().await?;
        migrate(&self.pool).await.map_err(RepoError::Migrate)
    }
}
