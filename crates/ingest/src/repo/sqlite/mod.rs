//! SQLite implementation of the repository: the embedded default, one file
//! and no server, for one host (a person's own archive, a first try, CI).
//!
//! [`SqliteRepository`] implements the repository's traits with the same schema
//! meaning and the same guarantees as the PostgreSQL backend, enforced by the
//! database where SQLite can (`migrations/sqlite`). Every write transaction
//! begins `IMMEDIATE`: it takes SQLite's single write lock before its first
//! read, so the fence it proves and the chain head it reads stay true until
//! it commits. Each submodule holds one role's statements and implements
//! that role, with the same file names as [`super::pg`]; the run lease is in
//! `runs`.

mod connect;
mod feed;
mod gc;
mod labels;
mod mailboxes;
mod orphans;
mod quarantine;
mod quota;
mod runs;
pub(crate) mod schema;
mod tx;
mod upserts;
mod verify_schedule;

pub use connect::Durability;
pub use tx::SqliteTx;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::RepoError;

/// The `strftime` format of timestamps computed in SQL: RFC 3339 UTC, the
/// shape sqlx binds, so stored timestamps compare as text in time order.
pub(crate) const TS: &str = "%Y-%m-%dT%H:%M:%f+00:00";

/// The clock of an embedded database: its one host's.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `at + span`, saturating at the end of year 9999: past it RFC 3339 needs a
/// sign (`+10000-…`), and a signed year would sort before every other time.
pub(crate) fn after(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    let latest = DateTime::<Utc>::from_timestamp(253_402_300_799, 0).unwrap_or(at);
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .map_or(latest, |t| t.min(latest))
}

/// A write transaction holding SQLite's write lock from its first statement.
pub(crate) async fn begin_immediate(
    pool: &SqlitePool,
    operation: &'static str,
) -> Result<Transaction<'static, Sqlite>, RepoError> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(RepoError::db(operation))
}

/// The repository over an SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteRepository {
    pool: SqlitePool,
    path: PathBuf,
    locks: connect::Locks,
    /// The file the pool opened: every write transaction checks it is still
    /// the one at `path`.
    file: connect::FileIdentity,
}

impl SqliteRepository {
    /// Opens (creating if missing) the database at `path` with a pool of up
    /// to `max_connections`.
    pub async fn open(path: &Path, max_connections: u32) -> Result<Self, RepoError> {
        Self::open_with(path, max_connections, Durability::Full).await
    }

    /// [`SqliteRepository::open`] with a chosen durability (benchmarks).
    pub async fn open_with(
        path: &Path,
        max_connections: u32,
        durability: Durability,
    ) -> Result<Self, RepoError> {
        let pool = connect::open(path, max_connections, durability).await?;
        Ok(SqliteRepository {
            pool,
            path: path.to_owned(),
            locks: connect::Locks::beside(path),
            file: connect::FileIdentity::of(path)?,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>, RepoError> {
        self.pool.acquire().await.map_err(RepoError::db("acquire"))
    }
}

/// The portable statements (`repo::sql`) run on this pool.
impl super::sql::HasDb for SqliteRepository {
    fn db(&self) -> super::sql::Db<'_> {
        super::sql::Db::Sqlite(&self.pool)
    }
}
